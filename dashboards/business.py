"""The academy's business: sign-ups, enrolments, payments and revenue, tests taken, notifications."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metric_names as m
from dashboards.panels import RATE, graph, new_dashboard, query, single
from dashboards.promql import share, sum_rate

RANGE = "$__range"
"""The dashboard's whole time range: the stats at the top count over it."""
PER_HOUR = "3600 * "


def total(metric: str, *matchers: str) -> str:
    inner = f"{metric}{{{', '.join(matchers)}}}" if matchers else metric
    return f"sum(increase({inner}[{RANGE}]))"


def business_dashboard() -> dashboard.Dashboard:
    """Builds the business dashboard."""
    return (
        new_dashboard(
            "cerebrum-business",
            "Cerebrum / Business",
            "What students do: register, enrol, pay, take tests, and hear back from us. "
            "The numbers at the top count over the time range picked; the graphs are per hour.",
            "business",
        )
        .time("now-24h", "now")
        .with_row(dashboard.Row("In the time range"))
        .with_panel(single("Registrations", query(total(m.REGISTRATIONS, 'role="student"')), width=4))
        .with_panel(single("Enrolments confirmed", query(total(m.ENROLLMENTS, 'outcome="confirmed"')), width=4))
        .with_panel(
            single(
                "Revenue",
                query(f"{total(m.REVENUE_PAISE)} / 100"),
                unit="currencyINR",
                description="Captured payments, in rupees (the counter is in paise).",
                width=4,
            )
        )
        .with_panel(single("Tests taken", query(total(m.ASSESSMENTS_SUBMITTED)), width=4))
        .with_panel(single("Notifications delivered", query(total(m.NOTIFICATIONS, 'status="delivered"')), width=4))
        .with_panel(
            single(
                "Payment success",
                query(
                    share(
                        f'sum(increase({m.PAYMENTS}{{outcome="succeeded"}}[{RANGE}]))',
                        f"sum(increase({m.PAYMENTS}[{RANGE}]))",
                    )
                ),
                unit="percentunit",
                thresholds=[(None, "red"), (0.8, "orange"), (0.95, "green")],
                width=4,
            )
        )
        .with_row(dashboard.Row("Students"))
        .with_panel(
            graph(
                "Registrations per hour by role",
                query(PER_HOUR + sum_rate(m.REGISTRATIONS, RATE, ("role",)), "{{role}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Logins per hour by outcome",
                query(PER_HOUR + sum_rate(m.LOGINS, RATE, ("outcome",)), "{{outcome}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Enrolments per hour: created, confirmed, compensated",
                query(
                    PER_HOUR + sum_rate(m.ENROLLMENTS, RATE, ("outcome",), 'outcome=~"created|confirmed|compensated"'),
                    "{{outcome}}",
                ),
                description="Compensated: the saga undid an enrolment whose payment or seat failed.",
                width=8,
            )
        )
        .with_row(dashboard.Row("Money"))
        .with_panel(
            graph(
                "Payments per hour by outcome",
                query(PER_HOUR + sum_rate(m.PAYMENTS, RATE, ("outcome",)), "{{outcome}}"),
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Revenue per hour",
                query(f"{PER_HOUR}{sum_rate(m.REVENUE_PAISE, RATE)} / 100", "revenue"),
                unit="currencyINR",
            )
        )
        .with_row(dashboard.Row("Learning and messages"))
        .with_panel(
            graph(
                "Tests taken per hour by topic",
                query(PER_HOUR + sum_rate(m.ASSESSMENTS_SUBMITTED, RATE, ("topic",)), "{{topic}}"),
                stacked=True,
                width=8,
            )
        )
        .with_panel(
            graph(
                "Average score by topic",
                query(
                    f"{sum_rate(m.ASSESSMENT_SCORE_SUM, RATE, ('topic',))}"
                    f" / {sum_rate(m.ASSESSMENT_SCORE_COUNT, RATE, ('topic',))}",
                    "{{topic}}",
                ),
                unit="percent",
                max_value=100,
                width=8,
            )
        )
        .with_panel(
            graph(
                "Notifications per hour: delivered and failed",
                query(
                    PER_HOUR
                    + sum_rate(m.NOTIFICATIONS, RATE, ("channel", "status"), 'status=~"delivered|failed|bounced"'),
                    "{{channel}} {{status}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Analytics events ingested per hour",
                query(PER_HOUR + sum_rate(m.ANALYTICS_EVENTS_INGESTED, RATE), "ingested"),
                width=24,
            )
        )
    )
