"""deploy/k8s/: the exporters the alert rules read run beside the platform, and Prometheus's jobs find them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import kustomize
from tests.deploy.conftest import EXPORTERS, K8S_DIR, OVERLAYS, by_kind
from tests.deploy.test_k8s_network import MONITORING_NAMESPACE, admitted

Builds = dict[str, list[kustomize.Manifest]]
SCRAPE_CONFIGS = K8S_DIR / "monitoring" / "scrape-configs.yaml"


def jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in yaml.safe_load(SCRAPE_CONFIGS.read_text())}


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_postgres_exporter_reads_the_database_with_a_role_of_its_own(builds: Builds, overlay: str) -> None:
    deployment = by_kind(builds[overlay], "Deployment")["postgres-exporter"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    assert main["image"].startswith("quay.io/prometheuscommunity/postgres-exporter:v")
    assert [(p["name"], p["containerPort"]) for p in main["ports"]] == [("http", EXPORTERS["postgres-exporter"])]
    (source,) = main["env"]
    assert source["name"] == "DATA_SOURCE_NAME"
    assert source["valueFrom"]["secretKeyRef"] == {"name": "cerebrum-secrets", "key": "postgres-exporter-url"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = by_kind(builds[overlay], "Service")["postgres-exporter"]
    assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_only_prometheus_reaches_the_exporter(builds: Builds, overlay: str) -> None:
    policies = list(by_kind(builds[overlay], "NetworkPolicy").values())
    labels = by_kind(builds[overlay], "Deployment")["postgres-exporter"]["spec"]["template"]["metadata"]["labels"]
    assert admitted(policies, labels, namespace=MONITORING_NAMESPACE, source={"app": "prometheus"})
    assert not admitted(policies, labels, namespace="cerebrum", source={"app.kubernetes.io/name": "gateway"})
    assert not admitted(policies, labels, namespace="ingress-nginx", source={"app.kubernetes.io/name": "ingress-nginx"})


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_pod_asks_the_cerebrum_job_to_scrape_its_metrics_port(builds: Builds, overlay: str) -> None:
    job = jobs()["cerebrum"]
    (discovery,) = job["kubernetes_sd_configs"]
    assert discovery["role"] == "pod" and discovery["namespaces"]["names"] == ["cerebrum"]
    kept = next(r for r in job["relabel_configs"] if r.get("action") == "keep")
    assert kept["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    for name, deployment in by_kind(builds[overlay], "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        (main,) = deployment["spec"]["template"]["spec"]["containers"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(main["ports"][0]["containerPort"]), name


def test_the_broker_is_scraped_per_queue_for_consumer_lag() -> None:
    rabbitmq = jobs()["rabbitmq"]
    assert rabbitmq["metrics_path"] == "/metrics/per-object"
    (target,) = rabbitmq["static_configs"][0]["targets"]
    assert target.endswith(":15692")


def relabel(job: dict[str, Any], meta: dict[str, str]) -> dict[str, str] | None:
    """Prometheus's relabelling of one discovered target (keep and replace, regexes anchored), or None if dropped."""
    labels = dict(meta)
    for rule in job["relabel_configs"]:
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if match is None:
                return None
        elif match is not None:
            labels[rule["target_label"]] = match.expand(re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1")))
    return labels


def test_a_discovered_pod_is_scraped_on_its_annotated_port_under_its_name() -> None:
    pod = {
        "__address__": "10.1.2.3:8101",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": "8101",
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "users",
        "__meta_kubernetes_pod_name": "users-7d9f-abcde",
    }
    scraped = relabel(jobs()["cerebrum"], pod)
    assert scraped is not None
    assert (scraped["__address__"], scraped["__metrics_path__"]) == ("10.1.2.3:8101", "/metrics")
    assert (scraped["job"], scraped["instance"]) == ("users", "users-7d9f-abcde")
    # A container port the pod does not name first: the annotation says where the metrics are.
    exporter = {**pod, "__address__": "10.1.2.4", "__meta_kubernetes_pod_annotation_prometheus_io_port": "9187"}
    assert relabel(jobs()["cerebrum"], exporter)["__address__"] == "10.1.2.4:9187"  # type: ignore[index]
    unannotated = {k: v for k, v in pod.items() if "prometheus_io_scrape" not in k}
    assert relabel(jobs()["cerebrum"], unannotated) is None


def test_promtool_accepts_the_broker_job_with_the_repositorys_rules(tmp_path: Path) -> None:
    # Debian's promtool is built without Kubernetes discovery, so it checks the static job and the rules.
    rules = K8S_DIR.parents[1] / "alerts"
    static = [job for job in jobs().values() if "kubernetes_sd_configs" not in job]
    config = {"rule_files": [str(rules / "*.yml"), str(rules / "slo" / "*.yml")], "scrape_configs": static}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
