"""Phase 6 checks: the canary's latency and errors against the monolith, and the budget a step burns."""

from __future__ import annotations

from typing import Any

from slo.burn import burn_rate
from slo.canary import compare_errors, compare_latency
from slo.durations import parse_duration
from slo.gate_model import GateInputs, MissingInput, Outcome
from slo.scoring import Verdict
from slo.sources import PrometheusClient
from slo.spec import AvailabilityObjective, ServiceSpec, prefix_table
from slo.traffic import Samples, collect


def owner(inputs: GateInputs) -> tuple[str, ServiceSpec]:
    if not inputs.prefix:
        raise MissingInput("no --prefix given (the gateway prefix being moved, e.g. courses)")
    service = prefix_table(inputs.specs).get(inputs.prefix)
    if service is None:
        raise MissingInput(f"no SLO spec owns the prefix {inputs.prefix!r}")
    return inputs.prefix, inputs.specs[service]


def canary_samples(inputs: GateInputs) -> Samples:
    """Collects the samples once per gate run; every canary check reads the same ones."""
    if "canary" not in inputs.cache:
        prefix, _ = owner(inputs)
        with inputs.http() as client:
            inputs.cache["canary"] = collect(
                client, prefix=prefix, requests=inputs.requests, max_students=inputs.students, path=inputs.path
            )
    samples: Samples = inputs.cache["canary"]
    return samples


def check_canary_latency(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    samples = canary_samples(inputs)
    result = compare_latency(
        samples.latencies("service"),
        samples.latencies("monolith"),
        alpha=float(params.get("alpha", 0.05)),
        relative_margin=float(params.get("relative_margin", 0.1)),
        absolute_margin=parse_duration(params.get("absolute_margin", "5ms")),
        min_samples=int(params.get("min_samples", 30)),
    )
    margin = f"{float(params.get('relative_margin', 0.1)) * 100:g}% + {params.get('absolute_margin', '5ms')}"
    notes = "; ".join(samples.notes)
    return Outcome(
        result.verdict,
        f"service not slower than monolith + {margin}",
        f"p={result.p_value:.3g}" if result.p_value is not None else "no test",
        result.detail + (f"; {notes}" if notes else ""),
    )


def check_canary_errors(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    samples = canary_samples(inputs)
    result = compare_errors(
        *samples.errors("service"),
        *samples.errors("monolith"),
        alpha=float(params.get("alpha", 0.05)),
        min_samples=int(params.get("min_samples", 30)),
    )
    measured = f"p={result.p_value:.3g}" if result.p_value is not None else "no test"
    return Outcome(result.verdict, "service errors not above the monolith's", measured, result.detail)


def check_canary_budget(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    """The error budget this step burns, capped: at most ``max_budget_share`` of the window's budget."""
    prefix, spec = owner(inputs)
    availability = next((o for o in spec.objectives if isinstance(o, AvailabilityObjective)), None)
    if availability is None:
        raise MissingInput(f"{spec.service} has no availability objective")
    step = parse_duration(params.get("step_duration", "1h"))
    share = float(params.get("max_budget_share", 0.02))
    allowed = share * spec.window / step
    minimum = int(params.get("min_samples", 30))
    errors, total = canary_samples(inputs).errors("service")
    source = "canary requests"
    if inputs.prometheus_url:
        client = PrometheusClient(inputs.prometheus_url)
        selector = f'prefix="{prefix}",side="service"'
        window = params.get("step_duration", "1h")
        try:
            seen = client.scalar(f"sum(increase(cerebrum_gateway_requests_total{{{selector}}}[{window}]))")
            if seen >= total:
                bad = client.scalar(
                    f'sum(increase(cerebrum_gateway_requests_total{{{selector},status=~"5.."}}[{window}]))'
                )
                errors, total, source = round(bad), round(seen), f"gateway metrics over {window}"
        finally:
            client.close()
    target = f"burn <= {allowed:.3g}x ({share * 100:g}% of the budget in {params.get('step_duration', '1h')})"
    if total < minimum:
        return Outcome(Verdict.INCONCLUSIVE, target, f"{total} requests", f"at least {minimum} needed")
    rate = burn_rate(errors / total, availability.error_budget)
    verdict = Verdict.PASS if rate <= allowed else Verdict.FAIL
    return Outcome(verdict, target, f"{rate:.2f}x", f"{errors}/{total} server errors on the service side ({source})")
