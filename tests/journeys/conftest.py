from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cerebrum.platform import Platform
from cerebrum.runner import build_platform
from tests.apps import FAST_HASHING


@pytest.fixture
async def embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """The whole embedded platform (SQLite, the Redis stand-in, the in-process bus), in this process."""
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    platform = build_platform(overrides={"data_dir": tmp_path, "environment": "test", **FAST_HASHING})
    async with platform.running():
        transport = httpx.ASGITransport(app=platform, client=("198.51.100.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://academy") as client:
            yield platform, client
