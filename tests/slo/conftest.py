from __future__ import annotations

from pathlib import Path

import pytest

from slo.spec import ServiceSpec, load_specs

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def specs() -> dict[str, ServiceSpec]:
    return load_specs()
