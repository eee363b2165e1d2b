"""A server process's garbage collector: start-up objects out of its sight, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cerebrum.runner import YOUNG_COLLECTION_THRESHOLD, _prepare_the_collector


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_server_freezes_what_start_up_built_and_collects_young_objects_less_often(collector: None) -> None:
    built_at_start = {"routes": [object() for _ in range(100)]}
    middle, oldest = gc.get_threshold()[1:]

    _prepare_the_collector()

    assert gc.get_freeze_count() >= 100, "what start-up built is out of the collector's sight"
    assert not any(obj is built_at_start for generation in range(3) for obj in gc.get_objects(generation))
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, middle, oldest)
    # Garbage made afterwards is still collected: a cycle nobody holds goes at the next collection.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
