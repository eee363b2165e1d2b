"""The evaluator on recorded data: a scrape of the platform under load, Locust stats, Prometheus answers.

The recorded scrape (fixtures/metrics.txt, the embedded platform after a short load) happens to hold
each verdict: courses passes, users only meets its latency warning bound, and assessments misses
its key latency objective while everything else holds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client import Histogram as PromHistogram
from typer.testing import CliRunner

from observability.metrics import LATENCY_BUCKETS
from slo.cli import slo_app
from slo.evaluate import evaluate, judge
from slo.rules import rule_groups
from slo.scoring import Verdict, score
from slo.sli import Histogram, ServiceSample
from slo.sources import PrometheusClient, read_locust, read_prometheus, samples_from_metrics
from slo.spec import SPECS_DIR, RouteScope, ServiceSpec, load_specs, prefix_table
from tests.slo.conftest import FIXTURES

METRICS = (FIXTURES / "metrics.txt").read_text()


def _verdicts(evaluation_services: list) -> dict[str, dict[str, Verdict]]:  # type: ignore[type-arg]
    return {s.service: {o.objective: o.verdict for o in s.objectives} for s in evaluation_services}


def test_recorded_scrape_passes_and_a_key_objective_fails_alone(specs: dict[str, ServiceSpec]) -> None:
    chosen = {name: specs[name] for name in ("courses", "users", "assessments")}
    result = evaluate(chosen, samples_from_metrics(METRICS), source="scrape", window="since start")
    by_service = {s.service: s for s in result.services}
    assert by_service["courses"].verdict is Verdict.PASS and by_service["courses"].score == 100
    # The users service's slowest requests were its 16 sign-ins: judged on their own objective,
    # which 16 requests are too few for, and left out of the 100 ms one.
    assert by_service["users"].verdict is Verdict.PASS
    assert _verdicts(result.services)["users"]["latency-p95"] is Verdict.PASS
    assert _verdicts(result.services)["users"]["sign-in-latency-p95"] is Verdict.SKIPPED
    assessments = _verdicts(result.services)["assessments"]
    assert assessments == {
        "availability": Verdict.PASS,
        "latency-p95": Verdict.FAIL,
        "error-rate": Verdict.PASS,
        "throughput": Verdict.SKIPPED,
    }
    # The total score alone would only warn; the key objective fails the whole evaluation on its own.
    assert result.score is not None and 75 <= result.score < 90
    assert by_service["assessments"].verdict is Verdict.FAIL and result.verdict is Verdict.FAIL


def test_no_data_is_inconclusive_never_a_pass(specs: dict[str, ServiceSpec]) -> None:
    result = evaluate({"payments": specs["payments"]}, samples_from_metrics(METRICS), source="scrape", window="x")
    assert result.verdict is Verdict.INCONCLUSIVE
    assert all(o.verdict in (Verdict.INCONCLUSIVE, Verdict.SKIPPED) for o in result.objectives)
    few = ServiceSample("courses", requests=20, errors=0, latency=Histogram.from_counts({0.01: 20}, exact=True))
    availability = judge(specs["courses"].objective("availability"), few)
    assert availability.verdict is Verdict.INCONCLUSIVE and availability.measured == 1.0
    assert "20 of 50 needed" in availability.detail


def test_budget_and_burn_rate(specs: dict[str, ServiceSpec]) -> None:
    sample = ServiceSample(
        "users", requests=10_000, errors=5, latency=Histogram.from_counts({0.01: 10_000}, exact=True)
    )
    availability = judge(specs["users"].objective("availability"), sample)
    assert availability.verdict is Verdict.PASS
    assert availability.burn_rate == pytest.approx(0.5) and availability.budget_remaining == pytest.approx(0.5)
    worse = ServiceSample("users", requests=10_000, errors=15, latency=sample.latency)
    assert judge(specs["users"].objective("availability"), worse).verdict is Verdict.WARN
    assert judge(specs["users"].objective("error-rate"), worse).verdict is Verdict.WARN
    broken = ServiceSample("users", requests=10_000, errors=100, latency=sample.latency)
    assert judge(specs["users"].objective("availability"), broken).verdict is Verdict.FAIL
    throughput = ServiceSample("users", requests=60_000, seconds=60, latency=sample.latency)
    assert judge(specs["users"].objective("throughput"), throughput, capacity=True).verdict is Verdict.PASS
    assert judge(specs["users"].objective("throughput"), throughput).verdict is Verdict.SKIPPED


def test_keptn_scoring_thresholds() -> None:
    class R:
        def __init__(self, verdict: Verdict, weight: float = 1, key: bool = False) -> None:
            self.verdict, self.weight, self.key = verdict, weight, key

    assert score([R(Verdict.PASS)] * 9 + [R(Verdict.FAIL)]).verdict is Verdict.PASS  # 90
    assert score([R(Verdict.PASS)] * 4 + [R(Verdict.FAIL)]).verdict is Verdict.WARN  # 80
    assert score([R(Verdict.PASS), R(Verdict.FAIL)]).verdict is Verdict.FAIL  # 50
    assert score([R(Verdict.PASS)] * 9 + [R(Verdict.FAIL, key=True)]).verdict is Verdict.FAIL
    assert score([R(Verdict.PASS), R(Verdict.INCONCLUSIVE)]).verdict is Verdict.INCONCLUSIVE
    assert score([R(Verdict.FAIL, 3), R(Verdict.INCONCLUSIVE)]).verdict is Verdict.FAIL
    assert score([R(Verdict.SKIPPED)]).verdict is Verdict.INCONCLUSIVE


def test_locust_stats_map_names_to_services_by_prefix(specs: dict[str, ServiceSpec]) -> None:
    samples = read_locust(FIXTURES / "locust-stats.json", prefix_table(specs))
    entries = json.loads((FIXTURES / "locust-stats.json").read_text())
    users = sum(e["num_requests"] for e in entries if re.match(r"/api/(auth|users)/", e["name"]))
    assert samples["users"].requests == users == samples["users"].latency.count
    assert set(samples) >= {"users", "courses", "assessments", "enrollments", "payments"}
    assert samples["courses"].seconds and samples["courses"].seconds > 0
    result = evaluate({"courses": specs["courses"]}, samples, source="locust", window="run")
    assert result.verdict is Verdict.PASS


def _prometheus(handler_values: dict[tuple[str, str], object]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        service = re.search(r'service="(\w+)"', query).group(1)  # type: ignore[union-attr]
        kind = "buckets" if "le)" in query else "errors" if 'status=~"5.."' in query else "requests"
        value = handler_values.get((service, kind))
        if kind == "buckets":
            result = [{"metric": {"le": le}, "value": [0, str(v)]} for le, v in (value or {}).items()]  # type: ignore[attr-defined]
        else:
            result = [{"metric": {}, "value": [0, str(value)]}] if value is not None else []
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})

    return httpx.MockTransport(handle)


def test_prometheus_source_reads_increases_over_the_window(specs: dict[str, ServiceSpec]) -> None:
    values = {
        ("courses", "requests"): 10_000,
        ("courses", "errors"): 80,
        ("courses", "buckets"): {"0.1": 9_000, "0.2": 9_700, "0.5": 9_990, "+Inf": 10_000},
    }
    client = PrometheusClient("http://prometheus:9090", client=httpx.Client(transport=_prometheus(values)))
    samples = read_prometheus(client, ["courses", "users"], "1h")
    result = evaluate({n: specs[n] for n in ("courses", "users")}, samples, source="prometheus", window="1h")
    courses = {o.objective: o for o in result.services[0].objectives}
    assert courses["availability"].verdict is Verdict.WARN and courses["availability"].measured == pytest.approx(0.992)
    assert courses["latency-p95"].verdict is Verdict.PASS and courses["latency-p95"].measured == pytest.approx(0.97)
    assert courses["error-rate"].verdict is Verdict.WARN and courses["error-rate"].burn_rate == pytest.approx(1.6)
    assert result.services[1].verdict is Verdict.INCONCLUSIVE, "no series: nothing happened, so nothing passes"


def _users_traffic(login_seconds: float, logins: int, profile_reads: int) -> str:
    """An exposition of the users service: slow-by-design logins beside fast profile reads."""
    registry = CollectorRegistry()
    labels = ("service", "route", "method", "status")
    requests = Counter("http_requests", "", labels, registry=registry)
    duration = PromHistogram("http_request_duration_seconds", "", labels, buckets=LATENCY_BUCKETS, registry=registry)
    for route, method, seconds, count in (
        ("/auth/login", "POST", login_seconds, logins),
        ("/users/profile", "GET", 0.02, profile_reads),
        ("/ready", "GET", 2.0, 500),
    ):
        for _ in range(count):
            requests.labels("users", route, method, "200").inc()
            duration.labels("users", route, method, "200").observe(seconds)
    return generate_latest(registry).decode()


def test_slow_by_design_sign_ins_are_judged_on_their_own_objective(specs: dict[str, ServiceSpec]) -> None:
    users = specs["users"]
    sample = samples_from_metrics(_users_traffic(0.3, logins=60, profile_reads=200))["users"]
    assert sample.requests == 260, "probes are never counted"
    result = evaluate({"users": users}, {"users": sample}, source="scrape", window="x")
    verdicts = {o.objective: o for o in result.objectives}
    # 60 argon2 logins of 300 ms are 23% of the service's requests: against 100 ms they would fail it.
    assert verdicts["latency-p95"].verdict is Verdict.PASS and verdicts["latency-p95"].samples == 200
    assert verdicts["sign-in-latency-p95"].verdict is Verdict.PASS and verdicts["sign-in-latency-p95"].samples == 60
    assert verdicts["availability"].samples == 260, "an objective without routes counts them all"
    slow = samples_from_metrics(_users_traffic(1.5, logins=60, profile_reads=200))
    verdict = judge(users.objective("sign-in-latency-p95"), slow["users"])
    assert verdict.verdict is Verdict.FAIL, "logins slower than their own 1 s objective still fail it"


def test_route_scoped_objectives_match_locust_names_and_promql_routes() -> None:
    scope = RouteScope(only=("/auth/login", "/courses/{course_id}"))
    assert scope.counts("/auth/login") and scope.counts("/courses/[id]") and scope.counts("/courses/{course_id}")
    assert not scope.counts("/auth/refresh") and not scope.counts("/courses/1/lessons")
    assert RouteScope.model_validate({"except": ["/auth/login"]}).counts("/users/profile")
    with pytest.raises(ValueError, match="either only or except"):
        RouteScope.model_validate({"only": ["/a"], "except": ["/b"]})
    rule = rule_groups({"users": load_specs(SPECS_DIR)["users"]})
    rules = [r for g in rule["groups"] for r in g["rules"]]
    exprs = [r["expr"] for r in rules if r.get("labels", {}).get("slo") == "sign-in-latency-p95"]
    assert exprs and all('route=~"/auth/login|/auth/register"' in e for e in exprs if "http_request" in e)


def test_evaluate_command_writes_every_report_and_exits_by_verdict(tmp_path: Path) -> None:
    stats = tmp_path / "run"
    stats.mkdir()
    (stats / "stats.json").write_text((FIXTURES / "locust-stats.json").read_text())
    runner = CliRunner()
    passed = runner.invoke(slo_app, ["evaluate", "--stats", str(stats), "-s", "courses", "--out", str(tmp_path)])
    assert passed.exit_code == 0, passed.output
    assert "courses" in passed.output and "PASS" in passed.output
    report = json.loads((tmp_path / "slo-evaluation.json").read_text())
    assert report["verdict"] == "PASS" and report["groups"]["courses"]["verdict"] == "PASS"
    assert '<testsuite name="courses"' in (tmp_path / "slo-evaluation.xml").read_text()
    assert "| courses ✅ | **availability** (key) |" in (tmp_path / "slo-evaluation.md").read_text()
    unknown = runner.invoke(slo_app, ["evaluate", "--stats", str(stats), "-s", "analytics"])
    assert unknown.exit_code == 2, "inconclusive"
    lenient = runner.invoke(slo_app, ["evaluate", "--stats", str(stats), "-s", "analytics", "--inconclusive-exit", "1"])
    assert lenient.exit_code == 1
