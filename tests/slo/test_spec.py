"""The specs hold the plan's table, refuse bad values naming the field, and map to OpenSLO."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from services.gateway.routing import ROUTES
from slo.openslo import to_openslo
from slo.spec import ServiceSpec, SpecError, load_specs, parse_spec, prefix_table
from tests.slo.conftest import ROOT

# The migration plan's "Performance Targets & SLAs": availability, p95 (s), error rate, req/s.
PLAN = {
    "users": (0.999, 0.100, 0.001, 1000),
    "courses": (0.995, 0.200, 0.005, 500),
    "enrollments": (0.999, 0.150, 0.001, 2000),
    "payments": (0.9995, 0.300, 0.0005, 100),
    "analytics": (0.99, 0.500, 0.01, 5000),
    "communication": (0.995, 1.0, 0.005, 1000),
    "assessments": (0.995, 0.200, 0.005, 3000),
}
USERS = ROOT / "slo" / "specs" / "users.yaml"


def test_every_service_has_the_plans_targets_over_30_days(specs: dict[str, ServiceSpec]) -> None:
    assert set(specs) == set(PLAN)
    for name, (availability, p95, error_rate, throughput) in PLAN.items():
        spec = specs[name]
        assert spec.window == 30 * 86400
        assert spec.objective("availability").target == availability
        latency = spec.objective("latency-p95")
        assert latency.threshold == pytest.approx(p95) and latency.target == 0.95  # type: ignore[union-attr]
        assert spec.objective("error-rate").target == error_rate
        assert spec.objective("throughput").target == throughput
        for objective in spec.objectives:
            assert objective.minimum_requests >= 1 and objective.weight >= 0


def test_the_specs_own_exactly_the_gateways_prefixes(specs: dict[str, ServiceSpec]) -> None:
    assert prefix_table(specs) == ROUTES


def _broken(change: object) -> str:
    data = yaml.safe_load(USERS.read_text())
    data = copy.deepcopy(data)
    change(data)  # type: ignore[operator]
    with pytest.raises(SpecError) as caught:
        parse_spec(data, source="slo/specs/users.yaml")
    return str(caught.value)


def test_a_bad_value_is_named_by_file_and_field() -> None:
    assert _broken(lambda d: d["objectives"][1].update(target=1.5)) == (
        "slo/specs/users.yaml: objectives[1].target: must be between 0 and 1"
    )
    assert _broken(lambda d: d["objectives"][0].update(warning=0.9999)).startswith(
        "slo/specs/users.yaml: objectives[0].warning: must not be above target"
    )
    assert _broken(lambda d: d["objectives"][2].update(sli="saturation")) == (
        "slo/specs/users.yaml: objectives[2].sli: must be one of availability, latency, error_rate, throughput"
    )
    assert "objectives[1].threshold: 'fast' is not a duration" in _broken(
        lambda d: d["objectives"][1].update(threshold="fast")
    )
    assert _broken(lambda d: d.update(window="2d")) == (
        "slo/specs/users.yaml: window: must be longer than the longest alerting window (3d)"
    )
    assert _broken(lambda d: d.update(owner="sre")) == "slo/specs/users.yaml: owner: Extra inputs are not permitted"


def test_a_file_must_be_named_after_its_service(tmp_path: Path) -> None:
    text = USERS.read_text().replace("service: users", "service: people")
    (tmp_path / "users.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"users\.yaml: service: is 'people' but the file is named users\.yaml"):
        load_specs(tmp_path)


def test_unknown_services_are_named(specs: dict[str, ServiceSpec]) -> None:
    with pytest.raises(SpecError, match="no SLO spec for billing"):
        load_specs(services=["users", "billing"])


def test_openslo_documents_carry_the_same_targets(specs: dict[str, ServiceSpec]) -> None:
    documents = to_openslo(specs["payments"])
    assert documents[0]["kind"] == "Service" and documents[0]["metadata"]["name"] == "payments"
    slos = {d["metadata"]["name"]: d for d in documents[1:]}
    availability = slos["payments-availability"]["spec"]
    assert availability["objectives"] == [{"displayName": "availability", "target": 0.9995}]
    assert availability["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert availability["budgetingMethod"] == "Occurrences"
    assert "ratioMetric" in availability["indicator"]["spec"]
    assert slos["payments-error-rate"]["spec"]["objectives"] == [
        {"displayName": "error-rate", "op": "lte", "value": 0.0005}
    ]
    assert slos["payments-latency-p95"]["metadata"]["annotations"]["cerebrum.academy/key"] == "true"
