"""SLOs: each service's SLIs, the error budget left over 30 days, and the burn rate per window.

Everything here reads the ``slo:*`` recording rules that `cerebrum slo rules` generates from
slo/specs/*.yaml into alerts/slo/, the same series its SLOErrorBudgetBurn alerts and the release
gate use: the graph an on-call engineer opens shows what paged them. Services and objectives are
variables read from those series, so a new spec shows up here without rebuilding.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metric_names as m
from dashboards.panels import graph, label_variable, new_dashboard, query, ranking, single

SERVICE = 'service="$service"'
ONE_SLO = 'service="$service", slo="$slo"'
BURN_WINDOWS = tuple(w for w in m.SLO_WINDOWS if w != "30d")


def burn_rate(window: str, matcher: str) -> str:
    """How fast a window spends the budget: 1 spends exactly the budget over the SLO's 30 days."""
    return f"{m.slo_error_ratio(window)}{{{matcher}}} / on(service, slo) (1 - {m.SLO_OBJECTIVE}{{{matcher}}})"


def slo_dashboard() -> dashboard.Dashboard:
    """Builds the SLO dashboard: budgets of all services, then a row per service, a graph per SLO."""
    board = (
        new_dashboard(
            "cerebrum-slo",
            "Cerebrum / SLOs",
            "Objectives from slo/specs (the migration plan's table). Budgets are over 30 days; a burn "
            "rate of 1 spends the budget exactly in 30 days. Dashed lines: the burn rates that page "
            "(14.4x, 6x) and open a ticket (3x, 1x) when the short window agrees.",
            "slo",
        )
        .time("now-24h", "now")
        .with_variable(label_variable("service", "Service", m.SLO_OBJECTIVE))
        .with_variable(label_variable("slo", "Objective", f'{m.SLO_OBJECTIVE}{{service=~"$service"}}'))
        .with_row(dashboard.Row("All services"))
        .with_panel(
            ranking(
                "Error budget left (30 days), lowest first",
                query(f"sort({m.SLO_BUDGET_REMAINING})", instant=True),
                unit="percentunit",
                width=24,
            )
        )
        .with_row(dashboard.Row("$service").repeat("service"))
        .with_panel(
            single(
                "SLI over 30 days",
                query(f"1 - {m.slo_error_ratio('30d')}{{{SERVICE}}}", "{{slo}}"),
                unit="percentunit",
                decimals=3,
                description="Share of good requests: not a 5xx (availability), within the threshold (latency).",
                width=8,
            )
        )
        .with_panel(
            single(
                "Objective",
                query(f"{m.SLO_OBJECTIVE}{{{SERVICE}}}", "{{slo}}"),
                unit="percentunit",
                decimals=3,
                width=8,
            )
        )
        .with_panel(
            single(
                "Error budget left",
                query(f"{m.SLO_BUDGET_REMAINING}{{{SERVICE}}}", "{{slo}}"),
                unit="percentunit",
                thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
                width=8,
            )
        )
    )
    lines = [(None, "transparent"), *((rate, "red" if rate >= 6 else "orange") for rate in m.SLO_BURN_RATES)]
    return board.with_panel(
        graph(
            "Burn rate of $slo by window",
            *(query(burn_rate(window, ONE_SLO), window) for window in BURN_WINDOWS),
            unit="suffix:×",
            lines=lines,
            width=12,
        ).repeat("slo")
    ).with_panel(
        graph(
            "p95 latency (5m)",
            query(f"{m.SERVICE_P95_5M}{{{SERVICE}}}", "p95"),
            unit="s",
            description="The latency SLO counts requests slower than its threshold; this is the p95 itself.",
            width=12,
        )
    )
