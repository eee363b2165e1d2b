"""A TCP proxy between one process and one dependency, which can drop, delay or reset its traffic.

Services under a chaos experiment reach PostgreSQL, Redis and RabbitMQ through one listener per
(service, dependency), so an experiment can cut one service off its database while every other
engineer on the machine keeps theirs. Modes, per listener:

``pass``   forward both ways (the default)
``delay``  forward, holding every chunk back ``delay_ms`` (plus up to ``jitter_ms``), each way
``drop``   a black hole: connections stay open, nothing is forwarded (clients hit their timeouts)
``reset``  abort every open connection with a TCP RST, and reset new ones as they arrive

A small HTTP API drives it (``GET /proxies``, ``PUT /proxies/{name}``, ``POST /reset``), so Chaos
Toolkit actions can run in another process. ``python -m chaos.proxy`` runs one on its own
(no toxiproxy package in Debian or PyPI here; this is the few lines we need of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from aiohttp import web

Mode = Literal["pass", "delay", "drop", "reset"]
MODES: tuple[Mode, ...] = ("pass", "delay", "drop", "reset")
CHUNK = 65536


@dataclass(frozen=True)
class Route:
    """``name=listen_port:upstream_host:upstream_port`` (listen port 0 picks a free one)."""

    name: str
    listen_port: int
    upstream_host: str
    upstream_port: int

    @classmethod
    def parse(cls, text: str) -> Route:
        name, _, rest = text.partition("=")
        listen, host, port = rest.split(":")
        return cls(name, int(listen), host, int(port))


def _abort(writer: asyncio.StreamWriter) -> None:
    """Closes a connection with an RST rather than a FIN, as a crashed server's kernel would."""
    sock = writer.get_extra_info("socket")
    # Already closed, the socket may be gone (uvloop answers a negative descriptor with ValueError).
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None

    def abort(self) -> None:
        _abort(self.client)
        if self.upstream is not None:
            _abort(self.upstream)


@dataclass
class Listener:
    route: Route
    mode: Mode = "pass"
    delay_ms: int = 0
    jitter_ms: int = 0
    port: int = 0
    accepted: int = 0
    links: set[Link] = field(default_factory=set)
    server: asyncio.Server | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.route.name,
            "listen": f"127.0.0.1:{self.port}",
            "upstream": f"{self.route.upstream_host}:{self.route.upstream_port}",
            "mode": self.mode,
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "connections": len(self.links),
            "accepted": self.accepted,
        }

    def set(self, mode: Mode, *, delay_ms: int = 0, jitter_ms: int = 0) -> None:
        self.mode, self.delay_ms, self.jitter_ms = mode, delay_ms, jitter_ms
        if mode == "reset":
            for link in list(self.links):
                link.abort()
            self.links.clear()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.route.listen_port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for link in list(self.links):
            link.abort()
        self.links.clear()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "reset":
            _abort(writer)
            return
        link = Link(writer)
        self.links.add(link)
        try:
            if self.mode == "drop":
                await self._swallow(reader)
                return
            try:
                up_reader, link.upstream = await asyncio.open_connection(
                    self.route.upstream_host, self.route.upstream_port
                )
            except OSError:
                _abort(writer)
                return
            # Either side closing closes both: a client that died must not leave its server session
            # open (PostgreSQL would keep its transaction, and its row locks, forever).
            pumps = [
                asyncio.ensure_future(self._pump(reader, link.upstream)),
                asyncio.ensure_future(self._pump(up_reader, writer)),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pending:
                pump.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self.links.discard(link)
            for end in (writer, link.upstream):
                if end is not None and not end.transport.is_closing():
                    end.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK):
                pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                if self.mode == "delay" and (self.delay_ms or self.jitter_ms):
                    await asyncio.sleep((self.delay_ms + random.uniform(0, self.jitter_ms)) / 1000)
                if self.mode == "drop":
                    continue  # a black hole from now on: read and forget
                if self.mode == "reset":
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            if self.mode == "reset":
                _abort(writer)


class ProxyServer:
    """Every listener of one proxy process, and the HTTP API that switches their modes."""

    def __init__(self, routes: list[Route], *, control_port: int = 0) -> None:
        self.listeners = {route.name: Listener(route) for route in routes}
        self.control_port = control_port
        self._runner: web.AppRunner | None = None

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def ports(self) -> dict[str, int]:
        return {name: listener.port for name, listener in self.listeners.items()}

    async def start(self) -> None:
        for listener in self.listeners.values():
            await listener.start()
        app = web.Application()
        app.router.add_get("/proxies", self._list)
        app.router.add_put("/proxies/{name}", self._set)
        app.router.add_post("/reset", self._reset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.control_port))
        self.control_port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for listener in self.listeners.values():
            await listener.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def set(self, name: str, mode: str, *, delay_ms: int = 0, jitter_ms: int = 0) -> dict[str, Any]:
        if mode not in MODES:
            raise ValueError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
        listener = self.listeners[name]
        listener.set(cast(Mode, mode), delay_ms=delay_ms, jitter_ms=jitter_ms)
        return listener.describe()

    async def _list(self, _request: web.Request) -> web.Response:
        return web.json_response({name: listener.describe() for name, listener in self.listeners.items()})

    async def _set(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.listeners:
            return web.json_response({"detail": f"no proxy called {name}"}, status=404)
        try:
            body = await request.json()
            described = self.set(
                name,
                str(body.get("mode", "pass")),
                delay_ms=int(body.get("delay_ms", 0)),
                jitter_ms=int(body.get("jitter_ms", 0)),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"detail": str(exc)}, status=422)
        return web.json_response(described)

    async def _reset(self, _request: web.Request) -> web.Response:
        for name in self.listeners:
            self.set(name, "pass")
        return web.json_response({name: listener.describe() for name, listener in self.listeners.items()})


async def serve(routes: list[Route], *, control_port: int, ready_file: Path | None) -> None:
    """Runs a proxy until SIGTERM or SIGINT; writes its ports to ``ready_file`` once listening."""
    proxy = ProxyServer(routes, control_port=control_port)
    await proxy.start()
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"control_url": proxy.control_url, "ports": proxy.ports()}))
        tmp.replace(ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--route", action="append", default=[], help="name=listen_port:upstream_host:upstream_port")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    routes = [Route.parse(text) for text in args.route]
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(routes, control_port=args.control_port, ready_file=args.ready_file))


if __name__ == "__main__":
    main()
