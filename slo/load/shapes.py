"""Load shapes as plain functions of time: how many users at ``t`` seconds, and how fast to get there.

The locustfile wraps the chosen one in a single ``LoadTestShape`` (Locust takes exactly one), so
these stay free of Locust and gevent and are tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Tick = tuple[int, float] | None
"""(users, spawn rate per second), or None when the run is over."""


@dataclass(frozen=True)
class Shape:
    users: int
    duration: float

    def tick(self, t: float) -> Tick:
        raise NotImplementedError

    def peak(self) -> int:
        return self.users


def _rate(users: int, seconds: float) -> float:
    return max(users / max(seconds, 1.0), 1.0)


class Steady(Shape):
    """Every user within the first fifth of the run (60 s at most), then held."""

    def tick(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        return self.users, _rate(self.users, min(self.duration * 0.2, 60.0))


class Ramp(Shape):
    """Users added evenly over 80% of the run, held for the rest: where does it start to hurt?"""

    def tick(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        climb = self.duration * 0.8
        users = self.users if t >= climb else max(1, math.ceil(self.users * t / climb))
        return users, _rate(self.users, climb)


class Spike(Shape):
    """A fifth of the users, then all of them at once for a fifth of the run, then back: results day."""

    def tick(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        base = max(1, self.users // 5)
        if self.duration * 0.4 <= t < self.duration * 0.6:
            return self.users, float(max(self.users - base, 1))  # all within a second
        return base, _rate(base, min(self.duration * 0.1, 10.0))


class Soak(Shape):
    """A gentle ramp (5% of the run), then the users held for hours: leaks, pools, disk, drift."""

    def tick(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        return self.users, _rate(self.users, self.duration * 0.05)


SHAPES: dict[str, Callable[[int, float], Shape]] = {
    "steady": Steady,
    "ramp": Ramp,
    "spike": Spike,
    "soak": Soak,
}


def shape(name: str, users: int, duration: float) -> Shape:
    if name not in SHAPES:
        raise ValueError(f"no load shape {name!r}; known: {', '.join(SHAPES)}")
    if users < 1 or duration <= 0:
        raise ValueError("a load needs at least one user and a positive duration")
    return SHAPES[name](users, duration)
