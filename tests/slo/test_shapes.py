from __future__ import annotations

import pytest

from slo.load.shapes import shape


def test_steady_reaches_every_user_and_stops_at_the_end() -> None:
    steady = shape("steady", 50, 100)
    assert steady.tick(0) == (50, 2.5) and steady.tick(99) == (50, 2.5) and steady.tick(100) is None


def test_ramp_climbs_then_holds() -> None:
    ramp = shape("ramp", 100, 100)
    users = [ramp.tick(t)[0] for t in (1, 40, 79, 80, 99)]  # type: ignore[index]
    assert users == [2, 50, 99, 100, 100]


def test_spike_jumps_in_the_middle_and_comes_back() -> None:
    spike = shape("spike", 100, 100)
    assert [spike.tick(t)[0] for t in (10, 45, 59, 70)] == [20, 100, 100, 20]  # type: ignore[index]


def test_soak_holds_for_the_whole_run() -> None:
    soak = shape("soak", 20, 3600)
    assert soak.tick(1800) == (20, 1.0) and soak.tick(3600) is None


def test_unknown_shapes_and_empty_loads_are_refused() -> None:
    with pytest.raises(ValueError, match="no load shape 'wave'"):
        shape("wave", 10, 10)
    with pytest.raises(ValueError):
        shape("steady", 0, 10)
