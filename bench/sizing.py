"""How many cores the academy's students need, from the measured CPU per request: `python -m bench.sizing`.

The students' mix is the locustfile's (slo/load/locustfile.py): per 42 tasks a student makes 72
requests, weighted below by request type; a task follows a think time of 10–30 s (20 s on
average). Each request type costs what bench/cpu.py measured through the gateway, all server
processes together (its latest comparison's last run). A read that a run did not measure (the
catalogue, the curriculum and the leaderboard before they had rows of their own) is priced as
the course read. Cores are counted
at the autoscaler's 70% target: a pod is given another replica before it is busier than that.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

TASKS = 42
MIX = {
    "GET /users/profile": 14,
    "GET /courses (catalogue)": 22,
    "GET /courses/{id}": 8,
    "GET /curriculum/{grade}": 3,
    "GET /leaderboard/{topic}": 5,
    "GET /courses/search": 6,
    "GET /questions/random": 3,
    "POST /assessments/submit": 3,
    "PUT /enrollments/{id}/progress": 3,
    "GET /analytics/dashboard/{id}": 2,
    "POST /enrollments (saga)": 1,
    "POST /payments/sandbox/checkout": 1,
    "POST /payments/verify": 1,
}
TARGET_UTILISATION = 0.70
UNMEASURED_READS = ("GET /courses (catalogue)", "GET /curriculum/{grade}", "GET /leaderboard/{topic}")
"""Reads that earlier runs did not measure; there, they are priced as the course read."""


def sizing(
    rows: list[dict[str, Any]], *, think_mean: float = 20.0, students: tuple[int, ...] = (10_000, 100_000)
) -> dict[str, Any]:
    by_request = {row["request"]: row for row in rows}
    for unmeasured in UNMEASURED_READS:
        by_request.setdefault(unmeasured, by_request["GET /courses/{id}"])
    requests = sum(MIX.values())
    mean_us = sum(n * by_request[kind]["cpu_us"] for kind, n in MIX.items()) / requests
    per_student = requests / TASKS / think_mean  # requests a second
    services: dict[str, float] = {}
    for kind, n in MIX.items():
        for process, us in by_request[kind]["by_process"].items():
            services[process] = services.get(process, 0.0) + n * us / requests
    core_students = 1 / (per_student * mean_us / 1e6)
    result: dict[str, Any] = {
        "mean_cpu_us_per_request": round(mean_us),
        "requests_per_student_per_s": round(per_student, 4),
        "students_per_core_at_100pct": round(core_students),
        "students_per_core_at_target": round(core_students * TARGET_UTILISATION),
        "by_service_cpu_us_per_mix_request": {k: round(v) for k, v in sorted(services.items())},
    }
    for count in students:
        rps = count * per_student
        result[f"students_{count}"] = {
            "requests_per_s": round(rps),
            "cores": round(rps * mean_us / 1e6 / TARGET_UTILISATION, 1),
            "pods_at_one_core_each": {
                name: max(1, math.ceil(rps * us / 1e6 / TARGET_UTILISATION)) for name, us in sorted(services.items())
            },
        }
    return result


def prices_the_mix(rows: list[dict[str, Any]]) -> bool:
    """Whether a run measured every request type the mix weighs (but the reads priced as a course read)."""
    measured = {row["request"] for row in rows}
    return all(kind in measured for kind in MIX if kind not in UNMEASURED_READS)


def main() -> None:
    results = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json").read_text())
    # The latest comparison that measured the whole mix: one run with --only prices a few types.
    runs = [c["runs"][-1] for c in results["cpu_per_request"]["comparisons"] if prices_the_mix(c["runs"][-1]["rows"])]
    print(json.dumps(sizing(runs[-1]["rows"]), indent=2))


if __name__ == "__main__":
    main()
