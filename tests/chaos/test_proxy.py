"""The chaos TCP proxy against a real echo server on loopback: pass, delay, drop and reset."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chaos.proxy import ProxyServer, Route


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def proxy(echo: int) -> AsyncIterator[ProxyServer]:
    server = ProxyServer([Route("svc.echo", 0, "127.0.0.1", echo)])
    await server.start()
    yield server
    await server.stop()


async def _connect(proxy: ProxyServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.ports()["svc.echo"])


async def _round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await reader.readexactly(len(payload))


async def test_it_passes_traffic_through(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    assert await _round_trip(reader, writer, b"ribosome") == b"ribosome"
    writer.close()


async def test_delay_holds_every_chunk_back_each_way(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    proxy.set("svc.echo", "delay", delay_ms=150)
    started = time.perf_counter()
    assert await _round_trip(reader, writer, b"mitochondria") == b"mitochondria"
    assert time.perf_counter() - started >= 0.3
    proxy.set("svc.echo", "pass")
    started = time.perf_counter()
    assert await _round_trip(reader, writer, b"x") == b"x"
    assert time.perf_counter() - started < 0.15, "no chunk is held back any more"
    writer.close()


async def test_drop_is_a_black_hole_for_open_and_new_connections(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    proxy.set("svc.echo", "drop")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_round_trip(reader, writer, b"lost"), 0.3)
    fresh_reader, fresh_writer = await _connect(proxy)  # the connection is accepted...
    with pytest.raises(TimeoutError):  # ...and nothing ever comes back
        await asyncio.wait_for(_round_trip(fresh_reader, fresh_writer, b"lost"), 0.3)
    proxy.set("svc.echo", "pass")
    again_reader, again_writer = await _connect(proxy)
    assert await _round_trip(again_reader, again_writer, b"back") == b"back"
    for w in (writer, fresh_writer, again_writer):
        w.close()


async def test_reset_aborts_open_connections_and_refuses_new_ones(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    assert await _round_trip(reader, writer, b"up") == b"up"
    proxy.set("svc.echo", "reset")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await asyncio.wait_for(_round_trip(reader, writer, b"gone"), 2)
    fresh_reader, fresh_writer = await _connect(proxy)
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await asyncio.wait_for(_round_trip(fresh_reader, fresh_writer, b"gone"), 2)
    assert proxy.listeners["svc.echo"].describe()["connections"] == 0
    proxy.set("svc.echo", "pass")
    again_reader, again_writer = await _connect(proxy)
    assert await _round_trip(again_reader, again_writer, b"restored") == b"restored"
    again_writer.close()


async def test_the_http_api_switches_modes(proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=proxy.control_url) as api:
        listed = (await api.get("/proxies")).json()
        assert listed["svc.echo"]["mode"] == "pass" and listed["svc.echo"]["upstream"].startswith("127.0.0.1:")
        changed = await api.put("/proxies/svc.echo", json={"mode": "delay", "delay_ms": 20, "jitter_ms": 5})
        assert changed.json()["mode"] == "delay" and changed.json()["delay_ms"] == 20
        assert (await api.put("/proxies/svc.echo", json={"mode": "melt"})).status_code == 422
        assert (await api.put("/proxies/nope", json={"mode": "drop"})).status_code == 404
        assert (await api.post("/reset")).json()["svc.echo"]["mode"] == "pass"


async def test_it_runs_as_its_own_process(echo: int, tmp_path: Path) -> None:
    ready = tmp_path / "proxy.json"
    errors = tmp_path / "proxy.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos.proxy", "--route", f"svc.echo=0:127.0.0.1:{echo}", "--ready-file", str(ready)],
        start_new_session=True,
        stderr=errors.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        info = json.loads(ready.read_text())
        reader, writer = await asyncio.open_connection("127.0.0.1", info["ports"]["svc.echo"])
        assert await _round_trip(reader, writer, b"separate") == b"separate"
        async with httpx.AsyncClient(base_url=info["control_url"]) as api:
            assert (await api.put("/proxies/svc.echo", json={"mode": "reset"})).status_code == 200
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
            await asyncio.wait_for(_round_trip(reader, writer, b"gone"), 2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    # It runs on uvloop there, whose closed sockets fail differently: nothing may escape a connection's task.
    assert "Traceback" not in errors.read_text()


async def test_a_client_that_dies_closes_its_upstream_connection(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    assert await _round_trip(reader, writer, b"alive") == b"alive"
    # An RST from the client, as the kernel sends for a killed process with unread data.
    _abort_client(writer)
    deadline = time.monotonic() + 2
    while proxy.listeners["svc.echo"].describe()["connections"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert proxy.listeners["svc.echo"].describe()["connections"] == 0


def _abort_client(writer: asyncio.StreamWriter) -> None:
    import socket
    import struct

    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
