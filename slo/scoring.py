"""Keptn-style scoring: weighted results, key criteria that fail on their own, pass/warn thresholds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    SKIPPED = "SKIPPED"


_POINTS = {Verdict.PASS: 1.0, Verdict.WARN: 0.5, Verdict.FAIL: 0.0, Verdict.INCONCLUSIVE: 0.0}


class Scored(Protocol):
    @property
    def verdict(self) -> Verdict: ...
    @property
    def weight(self) -> float: ...
    @property
    def key(self) -> bool: ...


@dataclass(frozen=True)
class Thresholds:
    passing: float = 90.0
    warning: float = 75.0


KEPTN = Thresholds()


@dataclass(frozen=True)
class Score:
    verdict: Verdict
    score: float | None
    """0..100; None when nothing could be judged."""
    reason: str


def score(results: Iterable[Scored], thresholds: Thresholds = KEPTN) -> Score:
    """Scores results: PASS counts its weight, WARN half, FAIL and INCONCLUSIVE nothing.

    A key result that fails fails the whole on its own. An inconclusive result never lets the
    whole pass: the verdict is INCONCLUSIVE unless the score fails even if the missing results
    had passed.
    """
    judged = [r for r in results if r.verdict is not Verdict.SKIPPED]
    if not judged:
        return Score(Verdict.INCONCLUSIVE, None, "nothing to judge")
    total = sum(r.weight for r in judged)
    weight = {id(r): (r.weight if total > 0 else 1.0) for r in judged}
    total = total if total > 0 else float(len(judged))
    points = sum(weight[id(r)] * _POINTS[r.verdict] for r in judged)
    value = round(100 * points / total, 1)
    if any(r.key and r.verdict is Verdict.FAIL for r in judged):
        return Score(Verdict.FAIL, value, "a key result failed on its own")
    unknown = sum(weight[id(r)] for r in judged if r.verdict is Verdict.INCONCLUSIVE)
    if unknown:
        if 100 * (points + unknown) / total < thresholds.warning:
            return Score(Verdict.FAIL, value, f"below {thresholds.warning:g} even if the inconclusive ones passed")
        return Score(Verdict.INCONCLUSIVE, value, "too little data to judge some results")
    if value >= thresholds.passing:
        return Score(Verdict.PASS, value, f"at or above {thresholds.passing:g}")
    if value >= thresholds.warning:
        return Score(Verdict.WARN, value, f"below {thresholds.passing:g}, at or above {thresholds.warning:g}")
    return Score(Verdict.FAIL, value, f"below {thresholds.warning:g}")


def exit_code(verdict: Verdict, *, warn: int = 2, inconclusive: int = 2) -> int:
    """0 pass, 1 fail, and the configured codes for warn and inconclusive."""
    return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.WARN: warn}.get(verdict, inconclusive)
