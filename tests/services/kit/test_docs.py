"""The API docs render with no network: a headless Chromium, cut off from every host but ours, shows the operations."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from cerebrum.runner import build_platform
from tests.apps import FAST_HASHING
from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make tools installs it)")


@pytest.fixture(scope="module")
def docs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded platform with the users service, served over real HTTP on loopback."""
    data = tmp_path_factory.mktemp("docs")
    platform = build_platform(overrides={"data_dir": data, "environment": "test", **FAST_HASHING}, names=["users"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(platform, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "the platform did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, every host but loopback unresolvable: a CDN asset would fail to load."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_pages_load_their_assets_from_the_platform(docs_url: str) -> None:
    swagger = httpx.get(f"{docs_url}/docs/users").text
    redoc = httpx.get(f"{docs_url}/docs/users/redoc").text
    assert "cdn." not in swagger and "cdn." not in redoc and "fonts.googleapis" not in redoc
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        served = httpx.get(f"{docs_url}/docs/users/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000, asset


def test_swagger_ui_renders_the_users_operations_offline(docs_url: str, tmp_path: Path) -> None:
    dom = chromium(f"{docs_url}/docs/users", tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="opblock opblock-') >= 5, "Swagger UI drew the operation blocks"
    assert 'data-path="/auth/login"' in dom.stdout and 'data-path="/users/profile"' in dom.stdout

    screenshot = tmp_path / "docs-users.png"
    shot = chromium(
        f"{docs_url}/docs/users", tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,1400"
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]


def test_redoc_renders_the_users_operations_offline(docs_url: str, tmp_path: Path) -> None:
    dom = chromium(f"{docs_url}/docs/users/redoc", tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "/auth/login" in dom.stdout and "operation/" in dom.stdout, "ReDoc drew the operations"
