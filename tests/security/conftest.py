from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.security.embedded import running_platform
from tests.security.world import Academy, build_academy

_SERVER_URLS = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")


@pytest.fixture(scope="module")
def _embedded_only() -> Iterator[None]:
    """The embedded stand-ins, whatever this shell points the services at."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _SERVER_URLS:
            patch.delenv(name, raising=False)
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def academy(_embedded_only: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Academy]:
    """One platform per test module, with an admin and two students (alice, bob) who own records."""
    data_dir: Path = tmp_path_factory.mktemp("academy")
    async with running_platform(data_dir) as (platform, client):
        yield await build_academy(platform, client, data_dir)
