"""Migration-phase gates: run a phase's criteria, score them as Keptn does, and (phase 6) move the weight.

The six phases are the migration plan's: 1 extraction, 2 infrastructure, 3 data migration,
4 integration, 5 testing, 6 production. Each has a gate file in slo/gates/ naming its criteria.
"""

from __future__ import annotations

from slo import canary_checks, checks, shadow
from slo.canary import next_weight, previous_weight
from slo.gate_model import (
    CriterionResult,
    GateFile,
    GateInputs,
    GateResult,
    MissingInput,
    Promotion,
)
from slo.report import Report, Row, _plain, objective_row
from slo.scoring import Verdict, score
from slo.sources.prometheus import PrometheusError
from slo.spec import SpecError

CHECKS: dict[str, checks.Check] = {
    "slo": checks.check_slo,
    "load_users": checks.check_load_users,
    "ready": checks.check_ready,
    "rules": checks.check_rules,
    "dashboards": checks.check_dashboards,
    "reconciliation": checks.check_reconciliation,
    "junit": checks.check_junit,
    "events": checks.check_events,
    "chaos": checks.check_chaos,
    "alerts": checks.check_alerts,
    "canary_latency": canary_checks.check_canary_latency,
    "canary_errors": canary_checks.check_canary_errors,
    "canary_budget": canary_checks.check_canary_budget,
    "shadow_diffs": shadow.check_shadow_diffs,
}


def run_criteria(gate: GateFile, inputs: GateInputs) -> list[CriterionResult]:
    results = []
    for criterion in gate.criteria:
        try:
            outcome = CHECKS[criterion.check](inputs, criterion.params)
            verdict, target, measured, detail = outcome.verdict, outcome.target, outcome.measured, outcome.detail
            evaluation = outcome.evaluation
        except MissingInput as exc:
            # No data never passes a key criterion; an optional one without its input is left out.
            verdict = Verdict.INCONCLUSIVE if criterion.key and not criterion.optional else Verdict.SKIPPED
            target, measured, detail, evaluation = criterion.description or criterion.check, "no input", str(exc), None
        except (PrometheusError, SpecError, OSError) as exc:
            verdict, target, measured, detail, evaluation = (
                Verdict.INCONCLUSIVE,
                criterion.check,
                "error",
                str(exc),
                None,
            )
        results.append(
            CriterionResult(
                name=criterion.name,
                check=criterion.check,
                verdict=verdict,
                key=criterion.key,
                weight=criterion.weight,
                target=target,
                measured=measured,
                detail=detail,
                evaluation=evaluation,
            )
        )
    return results


def _weights(inputs: GateInputs) -> dict[str, int]:
    with inputs.http() as client:
        response = client.get("/gateway/weights", headers=_admin(inputs))
        response.raise_for_status()
        weights: dict[str, int] = response.json()["weights"]
        return weights


def _admin(inputs: GateInputs) -> dict[str, str]:
    if not inputs.admin_token:
        raise MissingInput("--promote needs an admin token (--admin-token, or --accounts to log in as the admin)")
    return {"Authorization": f"Bearer {inputs.admin_token}"}


def current_weight(inputs: GateInputs) -> int:
    prefix, _ = canary_checks.owner(inputs)
    return int(_weights(inputs).get(prefix, 0))


def promote(gate: GateFile, inputs: GateInputs, verdict: Verdict, before: int) -> Promotion:
    """PASS moves the prefix to the next step, FAIL back to the previous one, anything else holds."""
    prefix, _ = canary_checks.owner(inputs)
    if verdict is Verdict.PASS:
        after = next_weight(before, gate.steps)
        action = "promoted" if after != before else "finished"
    elif verdict is Verdict.FAIL:
        after = previous_weight(before, gate.steps)
        action = "rolled back"
    else:
        return Promotion(prefix, before, before, "held")
    if after != before:
        with inputs.http() as client:
            response = client.put(f"/gateway/weights/{prefix}", json={"weight": after}, headers=_admin(inputs))
            response.raise_for_status()
    return Promotion(prefix, before, after, action)


def run_gate(gate: GateFile, inputs: GateInputs) -> GateResult:
    """Runs every criterion, scores them, and (phase 6 with ``promote``) moves the gateway's weight."""
    before = current_weight(inputs) if inputs.promote else None
    results = run_criteria(gate, inputs)
    total = score(results, gate.thresholds)
    promotion = promote(gate, inputs, total.verdict, before) if before is not None else None
    return GateResult(
        phase=gate.phase,
        name=gate.name,
        verdict=total.verdict,
        score=total.score,
        reason=total.reason,
        criteria=results,
        exit_codes=gate.exit_codes,
        promotion=promotion,
    )


def to_report(result: GateResult) -> Report:
    group = f"phase {result.phase}: {result.name}"
    rows = [
        Row(
            group=group,
            name=c.name,
            verdict=c.verdict,
            target=c.target,
            measured=c.measured,
            key=c.key,
            weight=c.weight,
            detail=c.detail,
        )
        for c in result.criteria
    ]
    groups = {group: (result.verdict, result.score)}
    for criterion in result.criteria:
        if criterion.evaluation is not None:
            for service in criterion.evaluation.services:
                groups[service.service] = (service.verdict, service.score)
                rows.extend(objective_row(o) for o in service.objectives)
    context = {"phase": str(result.phase)}
    if result.promotion is not None:
        p = result.promotion
        context["weight"] = f"{p.prefix} {p.before}% → {p.after}% ({p.action})"
    return Report(
        title=f"Migration gate, phase {result.phase} ({result.name})",
        verdict=result.verdict,
        score=result.score,
        reason=result.reason,
        context=context,
        groups=groups,
        rows=rows,
        data=_plain(result),
        item="criterion",
    )
