"""Multi-window, multi-burn-rate alerting (the SRE workbook, chapter 5), for any SLO window.

For a 30-day window the workbook pages at 14.4x over 1h (confirmed over 5m) and at 6x over 6h
(30m), and opens a ticket at 3x over 1d (2h) and at 1x over 3d (6h). Each factor is the share of
the whole budget the alert lets burn within its long window:

    factor = budget_share * slo_window / long_window

    14.4 = 2%  * 720h / 1h      6 = 5%  * 720h / 6h
       3 = 10% * 720h / 24h     1 = 10% * 720h / 72h

so for another window the factors scale with its length (28d: 13.44, 5.6, 2.8, 0.93), and an
alert always means the same thing: "at this rate, this share of the budget is gone".

The workbook's short window (1/12 of the long one) makes an alert stop soon after the burn stops;
it does not stop one evaluation's blip from paging. Each alert therefore also holds (``for:``) for
half its severity's shortest short window, as Pyrra does: a page waits 2m (at 14.4x that spends
0.07% of a 30-day budget), a ticket 1h (at 3x, 0.4%), small beside each one's detection time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slo.durations import format_duration, parse_duration

Severity = Literal["page", "ticket"]
# Every window a recording rule is kept for; the SLO window itself is added per spec.
RECORDED_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class BurnWindow:
    severity: Severity
    long: str
    short: str
    budget_share: float
    """The share of the whole window's budget this alert lets burn within ``long``."""

    def factor(self, slo_window_seconds: float) -> float:
        return round(self.budget_share * slo_window_seconds / parse_duration(self.long), 4)


BURN_WINDOWS = (
    BurnWindow("page", "1h", "5m", 0.02),
    BurnWindow("page", "6h", "30m", 0.05),
    BurnWindow("ticket", "1d", "2h", 0.10),
    BurnWindow("ticket", "3d", "6h", 0.10),
)


def hold(severity: Severity) -> str:
    """How long a burn must last before its alert fires: half the severity's shortest short window."""
    shortest = min(parse_duration(b.short) for b in BURN_WINDOWS if b.severity == severity)
    return format_duration(shortest / 2 // 60 * 60)


def windows_for(slo_window_seconds: float) -> list[str]:
    """The windows recorded for an SLO: the alerting ones and the SLO window."""
    return [*RECORDED_WINDOWS, format_duration(slo_window_seconds)]


def burn_rate(error_ratio: float, error_budget: float) -> float:
    """How many times faster than allowed the budget burns (1.0 spends it exactly over the window)."""
    return error_ratio / error_budget if error_budget > 0 else float("inf")
