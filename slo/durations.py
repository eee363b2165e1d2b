"""Durations as Prometheus and Locust write them: ``5m``, ``1h30m``, ``30d``, ``250ms``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | float | int) -> float:
    """Parses ``1h30m`` into seconds; a bare number is seconds."""
    if isinstance(text, int | float):
        return float(text)
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value) or not value:
        raise ValueError(f"{text!r} is not a duration (write it like 30s, 5m, 1h30m or 30d)")
    return total


def format_duration(seconds: float) -> str:
    """Writes seconds as Prometheus does: the largest whole units, ``1d``, ``6h``, ``90s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    remaining = int(round(seconds))
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if remaining >= size:
            count, remaining = divmod(remaining, size)
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
