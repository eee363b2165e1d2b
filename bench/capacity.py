"""Capacity against the plan's SLOs: request rates per service, and concurrent students per platform.

Rates: each service's hot read, straight to the service in distributed mode, at fixed open-loop
rates (bench/openloop.py, latency counted from when each request was due) as fractions of its
closed-loop ceiling: 80% first, then a few steps of bisection between the highest rate that held
and the lowest that did not. A step holds when p95 is within the SLO, server errors within the
error budget, and 95% of the rate was served.

Students: Locust (bench/students.py, the academy's StudentUser, FastHttpUser, with 10–30 s of
think time by default) doubles the students on the platform (through the gateway) step by step;
the students come from a pool made before the run (`cerebrum seed students`: accounts sharing one
argon2 hash, tokens issued), so a step measures students studying, not registering. Each step is
judged after the new students have arrived and settled, per service against its SLO, with the
server processes' CPU per request served and the load generator's share of its core. The
platform held the most students of a step where every SLO held.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness, memory, profile
from bench.harness import COMMANDS, LOAD_CPU, OUT, pinned, shown
from bench.platforms import Distributed

STEP_SECONDS = int(os.environ.get("BENCH_STEP_SECONDS", "3"))
RATE_STEPS = int(os.environ.get("BENCH_RATE_STEPS", "4"))
STUDENT_SECONDS = int(os.environ.get("BENCH_STUDENT_SECONDS", "900"))
SPAWN_RATE = float(os.environ.get("BENCH_SPAWN_RATE", "100"))
THINK = (os.environ.get("BENCH_THINK_MIN", "10"), os.environ.get("BENCH_THINK_MAX", "30"))
LEVELS = os.environ.get("BENCH_LEVELS", "100,200,400,800,1600,3200,6400,10000,12000")
# A newly arrived student acts at once: the window starts once the longest think has passed.
SETTLE = int(os.environ.get("BENCH_SETTLE", THINK[1]))
HOLD = int(os.environ.get("BENCH_HOLD", "60"))
TARGET_STUDENTS = 10_000
ROOT = Path(__file__).resolve().parents[1]


def objectives() -> dict[str, dict[str, Any]]:
    """Each service's p95 threshold, error budget and throughput from slo/specs (the plan's table).

    ``p95_ms`` is the service's own latency objective, with the routes it leaves out (``except``);
    an objective of its own for some routes (users' sign-ins, hashed on purpose) is in ``side``,
    judged on those routes alone.
    """
    from slo.spec import load_specs

    found: dict[str, dict[str, Any]] = {}
    for name, spec in load_specs().items():
        entry: dict[str, Any] = {"prefixes": list(spec.prefixes), "except": [], "side": []}
        for objective in spec.objectives:
            scope = objective.routes
            if objective.sli == "latency" and scope is not None and scope.only:
                side = {"name": objective.name, "p95_ms": objective.threshold * 1000, "only": list(scope.only)}
                entry["side"].append(side)
            elif objective.sli == "latency":
                entry["p95_ms"] = objective.threshold * 1000
                entry["except"] = list(scope.excluding) if scope is not None else []
            elif objective.sli == "error_rate":
                entry["error_rate"] = objective.target
            elif objective.sli == "throughput":
                entry["throughput"] = objective.target
        found[name] = entry
    return found


def open_loop(url: str, rate: float, headers: dict[str, str]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.openloop", url, "--rate", f"{rate:.0f}", "--seconds", str(STEP_SECONDS)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    COMMANDS.append(shown(pinned(LOAD_CPU, argv)))
    done = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _holds(step: dict[str, Any], objective: dict[str, Any]) -> bool:
    bad = (step["errors"] + step["non_2xx"]) / max(step["sent"], 1)
    served = step["achieved_per_s"] >= 0.95 * step["rate"]
    return step["p95_ms"] <= objective["p95_ms"] and bad <= objective["error_rate"] and served


def rates(platform: Distributed, ceiling: dict[str, Any]) -> dict[str, Any]:
    """The highest open-loop rate each service's hot read holds within its p95 SLO."""
    goals = objectives()
    closed = {row["service"]: row["requests_per_s"] for row in ceiling["rows"]}
    rows = []
    for name, path in platform.hot_reads().items():
        url, objective = platform.services[name].url + path, goals[name]
        steps: list[dict[str, Any]] = []
        low, high, factor = 0.0, 0.0, 0.8  # fractions of the closed-loop figure: highest held, lowest broken
        for _ in range(RATE_STEPS):
            rate = max(1.0, closed[name] * factor)
            print(f"bench: capacity — {name} at {rate:,.0f} req/s for {STEP_SECONDS}s…", flush=True)
            step = open_loop(url, rate, platform.student.auth)
            step["holds"] = _holds(step, objective)
            steps.append(step)
            if step["holds"]:
                low = factor
                factor = (factor + high) / 2 if high else factor * 1.25
            else:
                high = factor
                factor = (factor + low) / 2 if low else factor * 0.5
                time.sleep(1)  # let the backlog of the broken step drain before the next
        held = [s["rate"] for s in steps if s["holds"]]
        best = max(held) if held else 0.0
        row: dict[str, Any] = {
            "service": name,
            "read": "GET "
            + path.replace(platform.student.user_id, "{user_id}").replace(platform.student.course_id, "{id}"),
            "slo_p95_ms": objective["p95_ms"],
            "plan_throughput": objective["throughput"],
            "closed_loop_per_s": closed[name],
            "highest_rate_within_slo": round(best),
            "p95_ms_at_that_rate": next((s["p95_ms"] for s in steps if s["holds"] and s["rate"] == best), None),
            "steps": steps,
        }
        short = 1 - best / objective["throughput"]
        row["met"] = short <= 0
        row["miss"] = None if short <= 0 else f"{short:.0%} short of the plan's {objective['throughput']:,.0f} req/s"
        rows.append(row)
    return {"step_seconds": STEP_SECONDS, "rows": rows}


def _capacity(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """The most students of a step where every SLO held, and the fewest of one where some did not."""
    good = [v for v in judged if v["ok"]]
    bad = [v for v in judged if not v["ok"]]
    held = max(good, key=lambda v: v["users"]) if good else None
    broke = min(bad, key=lambda v: v["users"]) if bad else None
    result: dict[str, Any] = {
        "students_held": held["users"] if held else 0,
        "requests_per_s_at_that_load": held["rps"] if held else None,
        "broke": broke is not None,
        "broke_at_students": broke["users"] if broke else None,
        "broken_services": {k: v for k, v in broke["services"].items() if not v["ok"]} if broke else {},
    }
    for key in ("cpu_us_per_request", "cpu_us_per_request_by_process", "server_cores_used",
                "load_generator_cores_used", "cores_busy"):  # fmt: skip
        result[key] = held.get(key) if held else None
    short = 1 - result["students_held"] / TARGET_STUDENTS
    result["miss"] = None if short <= 0 else f"{short:.0%} short of the plan's {TARGET_STUDENTS:,}"
    return result


def students(
    url: str,
    name: str,
    pids: dict[str, int],
    *,
    pool: Path,
    profile_pid: int | None = None,
    database: str | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Students from ``pool`` arriving through ``url`` until the SLOs break; returns the verdict and peak RSS.

    ``database``: the platform's PostgreSQL database, whose connections opened each step counts.
    """
    out = (OUT / f"students-{name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "students.json").unlink(missing_ok=True)
    env = {
        **os.environ,
        "LOAD_OUT": str(out),
        "LOAD_RUN_ID": f"bench-{name}",
        "LOAD_THINK_MIN": THINK[0],
        "LOAD_THINK_MAX": THINK[1],
        "BENCH_SPAWN_RATE": str(SPAWN_RATE),
        "BENCH_STUDENT_SECONDS": str(STUDENT_SECONDS),
        "BENCH_LEVELS": LEVELS,
        "BENCH_SETTLE": str(SETTLE),
        "BENCH_HOLD": str(HOLD),
        "BENCH_OBJECTIVES": json.dumps(objectives()),
        "BENCH_SERVER_PIDS": json.dumps(pids),
        "LOAD_POOL": str(pool),
        "BENCH_DATABASE": database or "",
        "BENCH_PG_URL": harness.PG_URL,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    argv = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "students.py"), "--headless", "--host", url,
        "--csv", str(out / "stats"), "--only-summary", "--logfile", str(out / "locust.log"),
        "--stop-timeout", "2", "--exit-code-on-error", "0",
    ]  # fmt: skip
    COMMANDS.append(
        f"LOAD_THINK_MIN={THINK[0]} LOAD_THINK_MAX={THINK[1]} BENCH_LEVELS={LEVELS} BENCH_SPAWN_RATE={SPAWN_RATE:g} "
        f"BENCH_SETTLE={SETTLE} BENCH_HOLD={HOLD} BENCH_STUDENT_SECONDS={STUDENT_SECONDS} LOAD_POOL={pool} "
        + " ".join(pinned(LOAD_CPU, argv))
    )
    print(
        f"bench: students on the {name} platform — doubling from {LEVELS.split(',')[0]} while the SLOs hold, "
        f"up to {STUDENT_SECONDS}s…",
        flush=True,
    )
    where: dict[str, Any] | None = None
    busy = memory.CoreUse()
    with memory.peak_while(pids) as peak:
        if profile_pid is None:
            subprocess.run(
                pinned(LOAD_CPU, argv), env=env, cwd=ROOT, capture_output=True, timeout=STUDENT_SECONDS + 120
            )
        else:
            with profile.recording(f"students-{name}", profile_pid, STUDENT_SECONDS, rate=50) as recorded:
                subprocess.run(
                    pinned(LOAD_CPU, argv), env=env, cwd=ROOT, capture_output=True, timeout=STUDENT_SECONDS + 120
                )
            where = recorded.summary
    cores = busy.since()
    verdicts = out / "students.json"
    judged = json.loads(verdicts.read_text())["judged"] if verdicts.exists() else []
    result: dict[str, Any] = {
        "platform": name,
        "server_cores": harness.SERVER_CORES,
        "students_from": "a pool made before the run, signed in (cerebrum seed students)",
        "think_time_s": f"{THINK[0]}-{THINK[1]}",
        "arrivals_per_s": SPAWN_RATE,
        "levels": LEVELS,
        "settle_s": SETTLE,
        "hold_s": HOLD,
        **_capacity(judged),
        "cores_busy": cores,
        "judged": judged,
        "stats": str(out),
    }
    if where is not None:
        result["where_the_time_goes"] = where
    return result, peak.highest
