"""Phase 6 reads shadow traffic: a step fails when a route's answers differ, beyond noise, too often.

The gateway mirrors a share of a prefix's safe requests to the side that did not serve them and
compares the answers (``GET /gateway/shadow/report``); this judges that report against each
route's threshold in ``slo/gates/shadow.yaml`` (default: 1% of answers after noise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slo.gate_model import GATES_DIR, GateInputs, MissingInput, Outcome
from slo.scoring import Verdict

RULES_FILE = GATES_DIR / "shadow.yaml"
DEFAULT_MAX_DIFF_RATE = 0.01
DEFAULT_MIN_COMPARED = 20


@dataclass(frozen=True)
class Threshold:
    max_diff_rate: float = DEFAULT_MAX_DIFF_RATE
    min_compared: int = DEFAULT_MIN_COMPARED


def thresholds(raw: Mapping[str, Any] | None) -> tuple[Threshold, dict[str, Threshold]]:
    """The default threshold and each route's (by ``METHOD /path`` or by prefix) from the rules file."""
    raw = raw or {}
    defaults = raw.get("defaults") or {}
    base = Threshold(
        float(defaults.get("max_diff_rate", DEFAULT_MAX_DIFF_RATE)),
        int(defaults.get("min_compared", DEFAULT_MIN_COMPARED)),
    )
    routes = {
        str(key): Threshold(
            float((value or {}).get("max_diff_rate", base.max_diff_rate)),
            int((value or {}).get("min_compared", base.min_compared)),
        )
        for key, value in (raw.get("routes") or {}).items()
    }
    return base, routes


def load_rules(path: Path = RULES_FILE) -> Mapping[str, Any]:
    loaded = yaml.safe_load(path.read_text()) if path.exists() else None
    return loaded or {}


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def judge(report: Mapping[str, Any], *, prefix: str | None = None, rules: Mapping[str, Any] | None = None) -> Outcome:
    """FAIL when any route of the prefix differs more often than its threshold; names route and field."""
    base, per_route = thresholds(rules)
    routes = [r for r in report.get("routes", []) if prefix is None or r["prefix"] == prefix]
    if not routes:
        raise MissingInput(f"no shadow traffic on {prefix or 'any prefix'} (cerebrum shadow set <prefix> <percent>)")
    judged, failed, thin = [], [], []
    for route in routes:
        threshold = per_route.get(route["route"]) or per_route.get(route["prefix"]) or base
        if route["compared"] < threshold.min_compared:
            thin.append(f"{route['route']} ({route['compared']}/{threshold.min_compared})")
            continue
        judged.append(route)
        if route["diff_rate"] > threshold.max_diff_rate:
            top = route["top_fields"][0] if route["top_fields"] else None
            field = f"most in {top['field']} ({top['count']}×)" if top else ""
            failed.append(
                f"{route['route']}: {_percent(route['diff_rate'])} of {route['compared']} answers differ "
                f"(threshold {_percent(threshold.max_diff_rate)}) {field}".rstrip()
            )
    worst = max((r["diff_rate"] for r in judged), default=0.0)
    target = f"diff rate <= {_percent(base.max_diff_rate)} a route after noise"
    if failed:
        return Outcome(Verdict.FAIL, target, _percent(worst), "; ".join(failed))
    if not judged:
        return Outcome(Verdict.INCONCLUSIVE, target, "too few", "too few compared answers: " + ", ".join(thin))
    detail = f"{len(judged)} route(s) within their thresholds" + (f"; too few on {', '.join(thin)}" if thin else "")
    return Outcome(Verdict.PASS, target, _percent(worst), detail)


def check_shadow_diffs(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    """The gate's criterion: reads the gateway's shadow report and judges the step's prefix."""
    if not inputs.admin_token:
        raise MissingInput("the shadow report needs an admin token (--admin-token)")
    rules = dict(load_rules(GATES_DIR / str(params.get("rules", "shadow.yaml"))))
    if "max_diff_rate" in params:
        rules["defaults"] = {**(rules.get("defaults") or {}), "max_diff_rate": params["max_diff_rate"]}
    with inputs.http() as client:
        response = client.get("/gateway/shadow/report", headers={"Authorization": f"Bearer {inputs.admin_token}"})
    if response.status_code != 200:
        raise MissingInput(f"the gateway answered {response.status_code} to GET /gateway/shadow/report")
    report = response.json()
    return judge(report, prefix=inputs.prefix, rules=rules)
