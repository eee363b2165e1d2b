"""`python -m bench.openloop URL --rate R --seconds S`: an open-loop HTTP load at a fixed rate, as wrk2 does.

Request ``i`` is due at ``start + i / rate`` whether or not earlier ones have been answered, and
its latency is counted from when it was due, not from when a free connection sent it: a server
that falls behind shows it in the percentiles (no coordinated omission). Keep-alive HTTP/1.1
connections are opened as needed, up to ``--connections``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


class Pool:
    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            await self.drop()
            raise

    async def give(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with self.freed:
            self.idle.append(connection)
            self.freed.notify()

    async def drop(self) -> None:
        async with self.freed:
            self.opened -= 1
            self.freed.notify()


async def _exchange(pool: Pool, request: bytes) -> int:
    reader, writer = connection = await pool.take()
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        writer.close()
        await pool.drop()
        raise
    await pool.give(connection)
    return status


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run(url: str, *, rate: float, seconds: float, headers: dict[str, str], connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    pool = Pool(parts.hostname or "127.0.0.1", parts.port or 80, connections)
    latencies: list[float] = []
    failed = non_2xx = 0
    clock = time.perf_counter  # the loop's own clock ticks in whole milliseconds under uvloop

    async def one(due: float) -> None:
        nonlocal failed, non_2xx
        try:
            status = await _exchange(pool, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failed += 1
            return
        latencies.append(clock() - due)
        if not 200 <= status < 400:
            non_2xx += 1

    total = int(rate * seconds)
    start = clock() + 0.05
    tasks: list[asyncio.Task[None]] = []
    sent = 0
    while sent < total:
        now = clock()
        while sent < total and start + sent / rate <= now:
            tasks.append(asyncio.create_task(one(start + sent / rate)))
            sent += 1
        await asyncio.sleep(max(0.0, min(0.002, start + sent / rate - clock())))
    finished = start + seconds
    _, late = await asyncio.wait(tasks, timeout=max(2.0, seconds / 2)) if tasks else (set(), set())
    for task in late:
        task.cancel()
    elapsed = max(clock() - start, seconds)
    ordered = sorted(latencies)
    # A request still unanswered when the run gives up counts as slower than any answered one.
    ordered += [float("inf")] * len(late)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "answered": len(latencies),
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "behind_s": round(max(0.0, clock() - finished), 3),
        "p50_ms": round(_percentile(ordered, 50) * 1000, 3),
        "p95_ms": round(_percentile(ordered, 95) * 1000, 3),
        "p99_ms": round(_percentile(ordered, 99) * 1000, 3),
        "non_2xx": non_2xx,
        "errors": failed + len(late),
        "connections_opened": pool.opened,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    started = time.perf_counter()
    load = run(args.url, rate=args.rate, seconds=args.seconds, headers=headers, connections=args.connections)
    try:
        import uvloop

        result = uvloop.run(load)
    except ImportError:
        result = asyncio.run(load)
    result["wall_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
