"""What hiredis saves where the question paper spends it: `python -m bench.hiredis`.

``GET /questions/random`` reads its topic's whole pool of question ids (SDIFF against those the
attempt was served) on every draw. This times that read with redis-py's own Python reply parser
and with hiredis (its C parser), each in a fresh process on the real Redis, as CPU time of the
process per SDIFF, and writes the pair into bench/results.json (``cpu_per_request.hiredis``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import REDIS_URL

RESULTS = Path("bench/results.json")
MEMBERS = 1000
ROUNDS = 300


async def _draws(members: int) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from redis.utils import HIREDIS_AVAILABLE

    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    pool = f"bench:hiredis:{uuid.uuid4().hex}"
    try:
        await client.sadd(pool, *[str(uuid.uuid4()) for _ in range(members)])
        for _ in range(20):
            await client.sdiff([pool, pool + ":served"])
        began = time.process_time()
        for _ in range(ROUNDS):
            await client.sdiff([pool, pool + ":served"])
        spent = time.process_time() - began
    finally:
        await client.delete(pool)
        await client.aclose()
    return {"hiredis": HIREDIS_AVAILABLE, "members": members, "cpu_us_per_sdiff": round(spent / ROUNDS * 1e6)}


def _child(without: bool, members: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.hiredis", "--child", "off" if without else "on", str(members)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        if sys.argv[2] == "off":
            sys.modules["hiredis"] = None  # type: ignore[assignment]
        print(json.dumps(asyncio.run(_draws(int(sys.argv[3])))))
        return
    rows = [_child(without, MEMBERS) for _ in range(2) for without in (True, False)]
    off = sorted(r["cpu_us_per_sdiff"] for r in rows if not r["hiredis"])
    on = sorted(r["cpu_us_per_sdiff"] for r in rows if r["hiredis"])
    result = {"members": MEMBERS, "python_parser_us": off[0], "hiredis_us": on[0], "runs": rows}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("cpu_per_request", {})["hiredis"] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
