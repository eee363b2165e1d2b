"""deploy/k8s/: only the gateway is reachable from outside; inside, only the calls the design makes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy import kustomize
from tests.deploy.conftest import OVERLAYS, SAGA_CALLS, by_kind, processes

Builds = dict[str, list[kustomize.Manifest]]
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_the_only_way_in_is_the_gateway(builds: Builds, overlay: str) -> None:
    ingresses = by_kind(builds[overlay], "Ingress")
    assert list(ingresses) == ["cerebrum"]
    backends = {
        (path["backend"]["service"]["name"], path["path"])
        for rule in ingresses["cerebrum"]["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {("gateway", "/api")}
    assert "defaultBackend" not in ingresses["cerebrum"]["spec"]
    assert all(
        service["spec"].get("type", "ClusterIP") == "ClusterIP"
        for service in by_kind(builds[overlay], "Service").values()
    )


def test_production_serves_the_public_host_over_tls(builds: Builds) -> None:
    spec = by_kind(builds["production"], "Ingress")["cerebrum"]["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts == set(spec["tls"][0]["hosts"])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions with In / NotIn / Exists) against a set of labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
    return True


def admitted(
    policies: list[kustomize.Manifest], target: dict[str, str], *, namespace: str, source: dict[str, str]
) -> bool:
    """Whether some policy selecting the target pod lets a pod with these labels in that namespace reach port http."""
    for policy in policies:
        if not selects(policy["spec"]["podSelector"], target):
            continue
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and not any(port["port"] == "http" for port in rule["ports"]):
                continue
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    same = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
                else:
                    same = namespace == "cerebrum"
                if same and selects(peer.get("podSelector", {}), source):
                    return True
    return False


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_network_policies_isolate_everything_but_the_gateway(builds: Builds, overlay: str) -> None:
    policies = list(by_kind(builds[overlay], "NetworkPolicy").values())
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"], "no default deny"
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in processes(builds[overlay]).items()}
    controller = {"app.kubernetes.io/name": "ingress-nginx"}
    for name, labels in pods.items():
        from_outside = admitted(policies, labels, namespace=INGRESS_NAMESPACE, source=controller)
        assert from_outside == (name == "gateway"), name
        assert admitted(policies, labels, namespace=MONITORING_NAMESPACE, source={"app": "prometheus"}), name
        assert not admitted(policies, labels, namespace="default", source={}), name
        for caller, caller_labels in pods.items():
            if caller == name:
                continue
            expected = caller == "gateway" or name in SAGA_CALLS.get(caller, set())
            assert admitted(policies, labels, namespace="cerebrum", source=caller_labels) == expected, (caller, name)
