"""What analytics saves by building its event upserts once: `python -m bench.upserts`.

Every consumed event applies its deltas with five upserts (learners, activity, performance,
presence, reports). Built per event, the SQLAlchemy constructs cost CPU before a row is written;
built once per dialect, an event looks them up. This times both, as CPU time of this process per
event, and writes them into bench/results.json (``cpu_per_request.analytics_upserts``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from services.analytics.aggregate_repository import _delta_statements

RESULTS = Path("bench/results.json")
ROUNDS = 300


def main() -> None:
    build = _delta_statements.__wrapped__
    build("postgresql")
    began = time.process_time()
    for _ in range(ROUNDS):
        build("postgresql")
    per_event = (time.process_time() - began) / ROUNDS
    _delta_statements("postgresql")
    began = time.process_time()
    for _ in range(ROUNDS):
        _delta_statements("postgresql")
    cached = (time.process_time() - began) / ROUNDS
    result = {"built_per_event_us": round(per_event * 1e6), "built_once_us": round(cached * 1e6, 1)}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("cpu_per_request", {})["analytics_upserts"] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
