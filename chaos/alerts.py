"""What an experiment says about alerts, the deadlines the rule files imply, and the verdict on what Prometheus did.

An experiment names, in its ``cerebrum-alerts`` extension, the alerts its fault must fire and the
ones that must stay silent, each as an alert name and label values (regular expressions, matched
whole, as Prometheus matchers are). The deadline of an alert comes from the rule file loaded by the
run's Prometheus, never from the experiment: the rule's ``for:``, plus the time its expression
needs to read the fault, plus the scrape and evaluation intervals. The expression reads the fault
at the latest once its shortest range window (its own, or that of a recording rule it reads) holds
nothing but the fault's samples; a threshold on an ``*_age_seconds`` gauge needs that many seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXTENSION = "cerebrum-alerts"
SCRAPE_INTERVAL_SECONDS = 1.0
EVALUATION_INTERVAL_SECONDS = 1.0
# A target is scraped, then a rule group evaluated, then the alerts polled: each can lag an interval
# (a scrape its timeout as well), a gauge such as the outbox's age trails by its owner's update loop,
# and a busy machine stretches all of them. Measured lag on two shared cores: up to 6 s.
SLACK_SECONDS = 15.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_RANGE = re.compile(r"\[\s*(\d+(?:ms|s|m|h|d|w|y))+\s*(?::[^\]]*)?\]")
_AGE_THRESHOLD = re.compile(r"_age_seconds\b[^><]*?>\s*([0-9.]+)")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def seconds(duration: str | None) -> float:
    """A Prometheus duration (``1m``, ``1h30m``, ``500ms``) in seconds; none is zero."""
    if not duration:
        return 0.0
    parts = _DURATION.findall(str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration).strip():
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class Matcher:
    """An alert name and label values, each a regular expression matched whole."""

    alert: str = ".+"
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Matcher:
        return cls(alert=str(spec.get("alert", ".+")), labels={k: str(v) for k, v in spec.get("labels", {}).items()})

    def matches(self, labels: Mapping[str, str]) -> bool:
        if not re.fullmatch(self.alert, labels.get("alertname", "")):
            return False
        return all(k in labels and re.fullmatch(v, labels[k]) for k, v in self.labels.items())

    def describe(self) -> str:
        inner = ",".join(f'{k}=~"{v}"' for k, v in self.labels.items())
        return f"{self.alert}{{{inner}}}"


@dataclass(frozen=True)
class Expectations:
    fire: tuple[Matcher, ...] = ()
    silent: tuple[Matcher, ...] = ()

    @classmethod
    def of(cls, experiment: Mapping[str, Any]) -> Expectations:
        """The experiment's ``cerebrum-alerts`` extension (none: nothing expected, nothing forbidden)."""
        for extension in experiment.get("extensions") or []:
            if extension.get("name") == EXTENSION:
                return cls(
                    fire=tuple(Matcher.parse(s) for s in extension.get("fire", [])),
                    silent=tuple(Matcher.parse(s) for s in extension.get("silent", [])),
                )
        return cls()

    def as_json(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "fire": [{"alert": m.alert, "labels": dict(m.labels)} for m in self.fire],
            "silent": [{"alert": m.alert, "labels": dict(m.labels)} for m in self.silent],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Expectations:
        return cls.of({"extensions": [{"name": EXTENSION, **data}]})


@dataclass(frozen=True)
class Rules:
    """The alerting and recording rules of the rule files a run's Prometheus loads."""

    alerts: tuple[dict[str, Any], ...]
    records: Mapping[str, tuple[str, ...]]

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Rules:
        alerts: list[dict[str, Any]] = []
        records: dict[str, list[str]] = {}
        for path in paths:
            for group in (yaml.safe_load(Path(path).read_text()) or {}).get("groups", []):
                for rule in group.get("rules", []):
                    if "alert" in rule:
                        alerts.append(rule)
                    elif "record" in rule:
                        records.setdefault(rule["record"], []).append(str(rule["expr"]))
        return cls(tuple(alerts), {k: tuple(v) for k, v in records.items()})

    def windows(self, expr: str, seen: frozenset[str] = frozenset()) -> list[float]:
        """Every range window the expression reads, through the recording rules it names."""
        found = [seconds(m.group(0).strip("[] ").split(":")[0]) for m in _RANGE.finditer(expr)]
        for name in set(_NAME.findall(expr)) & set(self.records) - seen:
            for recorded in self.records[name]:
                found += self.windows(recorded, seen | {name})
        return found

    def deadline(self, matcher: Matcher) -> dict[str, Any]:
        """Seconds after the fault by which the matched alert must fire, and how they add up.

        Several rules may share a name (the SLO rules' page and ticket levels): the matcher's labels
        pick those whose own labels fit, and the longest deadline of those stands.
        """
        rules = [
            rule
            for rule in self.alerts
            if re.fullmatch(matcher.alert, rule["alert"])
            and all(
                k not in (rule.get("labels") or {}) or re.fullmatch(v, str(rule["labels"][k]))
                for k, v in matcher.labels.items()
            )
        ]
        if not rules:
            raise ValueError(f"no rule in the loaded rule files can fire {matcher.describe()}")
        best: dict[str, Any] = {}
        for rule in rules:
            expr = str(rule["expr"])
            windows = self.windows(expr)
            ages = [float(a) for a in _AGE_THRESHOLD.findall(expr)]
            reads = min(windows) if windows else max(ages, default=0.0)
            hold = seconds(rule.get("for"))
            total = hold + reads + SLACK_SECONDS
            if total > best.get("seconds", -1.0):
                best = {
                    "seconds": total,
                    "for_seconds": hold,
                    "expression_true_within_seconds": reads,
                    "slack_seconds": SLACK_SECONDS,
                    "rule": rule["alert"],
                }
        return best


# What Prometheus showed ------------------------------------------------------------------------------
def _key(labels: Mapping[str, str]) -> str:
    return labels.get("alertname", "") + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def episodes(observations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per alert instance and activation: when it went pending and when it fired.

    ``observations`` are polls of ``/api/v1/alerts`` as the watcher wrote them (``at``, ``labels``,
    ``state``, ``active_at``); an instance is the same activation while its ``active_at`` is.
    """
    found: dict[tuple[str, float], dict[str, Any]] = {}
    for seen in sorted(observations, key=lambda o: o["at"]):
        labels = seen["labels"]
        entry = found.setdefault(
            (_key(labels), seen["active_at"]),
            {"alert": labels.get("alertname"), "labels": labels, "pending_at": seen["active_at"], "firing_at": None},
        )
        if seen["state"] == "firing" and entry["firing_at"] is None:
            entry["firing_at"] = seen["at"]
    return sorted(found.values(), key=lambda e: e["pending_at"])


def judge(
    expectations: Expectations,
    observed: list[dict[str, Any]],
    rules: Rules,
    *,
    started_at: float,
    finished_at: float | None = None,
    fault_at: float | None,
    awaited: bool,
) -> dict[str, Any]:
    """The alerts part of an experiment's verdict.

    Only activations that began once the experiment had started count: an alert an earlier
    experiment left firing is inherited, not caused. Every ``fire`` alert must have fired within its
    deadline of the fault (when the run awaited them); no ``silent`` alert may have fired at all.
    """
    caused = [
        e
        for e in episodes(observed)
        if e["pending_at"] >= started_at - SCRAPE_INTERVAL_SECONDS
        and (finished_at is None or e["pending_at"] <= finished_at)
    ]
    reasons: list[str] = []
    expected = []
    for matcher in expectations.fire:
        deadline = rules.deadline(matcher)
        fired = [e for e in caused if e["firing_at"] is not None and matcher.matches(e["labels"])]
        pending = [e for e in caused if matcher.matches(e["labels"])]
        first = min(fired, key=lambda e: e["firing_at"]) if fired else None
        after = round(first["firing_at"] - fault_at, 3) if first and fault_at is not None else None
        expected.append(
            {
                "alert": matcher.describe(),
                "deadline_seconds": round(deadline["seconds"], 3),
                "deadline": deadline,
                "pending_at": min((e["pending_at"] for e in pending), default=None),
                "firing_at": first["firing_at"] if first else None,
                "fired_after_seconds": after,
                "labels": first["labels"] if first else None,
                "awaited": awaited,
            }
        )
        if awaited and (after is None or after > deadline["seconds"]):
            reasons.append(
                f"{matcher.describe()} did not fire within {deadline['seconds']:.0f}s of the fault"
                + (f" (fired after {after:.0f}s)" if after is not None else "")
            )
    pages = [
        e for e in caused if e["firing_at"] is not None and any(m.matches(e["labels"]) for m in expectations.silent)
    ]
    reasons += [f"unrelated alert fired: {_key(e['labels'])}" for e in pages]
    return {
        "expected": expected,
        "unrelated_fired": [{"alert": e["alert"], "labels": e["labels"], "firing_at": e["firing_at"]} for e in pages],
        "seen": caused,
        "reasons": reasons,
    }
