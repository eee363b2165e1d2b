"""bench/results.md: one table per figure, each with its target and by how much it is missed.

``python -m bench.report`` writes it again from bench/results.json.
"""

from __future__ import annotations

from typing import Any

from bench.profile import headline
from bench.report_cpu import cpu


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _verdict(row: dict[str, Any]) -> str:
    return "met" if not row.get("miss") else f"**missed**: {row['miss']}"


def _where(label: str, summary: dict[str, Any] | None) -> list[str]:
    if not summary:
        return []
    return ["", f"Where the time goes ({label}, py-spy): {headline(summary)}."]


def tax(section: dict[str, Any]) -> list[str]:
    lines = [
        "| observability tax | instrumentation | req/s | vs off | p50 ms | p99 ms | target (throughput loss) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in section["rows"]:
        target = "" if "target_max_loss" not in r else f"≤ {r['target_max_loss']:.0%}: {_verdict(r)}"
        lines.append(
            f"| {r['scenario']} | {r['variant']} | {_n(r['requests_per_s'], 1 if r['requests_per_s'] < 100 else 0)} "
            f"| {r['ratio_to_off']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {target} |"
        )
    where = section.get("where_the_time_goes")
    label = f"{where['scenario']}, {where['variant']}" if where else ""
    lines += _where(label, where)
    shares = (where or {}).get("instrumentation_share_by_variant") or {}
    if len(shares) > 1 and None not in shares.values():
        lines[-1] += (
            " Own time in opentelemetry, structlog, prometheus_client and observability: "
            + ", ".join(f"{share:.0%} {variant}" for variant, share in shares.items())
            + "."
        )
    return lines


def gateway(section: dict[str, Any]) -> list[str]:
    lines = [
        "| gateway overhead, every request forwarded | direct req/s | gateway req/s | nginx req/s "
        "| gateway ÷ nginx (≥ 0.70) | added p50 ms, gateway / nginx (< 1 ms) | verdict "
        "| from the gateway's copy: req/s, added p50 ms |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in section["rows"]:
        loaded, copy = r["loaded"], r.get("from_copy")
        kept = f"{_n(copy['requests_per_s'])}, {copy['added_p50_ms']:.2f}" if copy else "—"
        lines.append(
            f"| {r['scenario']} | {_n(loaded['direct']['requests_per_s'])} | {_n(loaded['gateway']['requests_per_s'])} "
            f"| {_n(loaded['nginx']['requests_per_s'])} | {r['gateway_to_nginx_throughput']:.2f} "
            f"| {r['gateway_added_p50_ms']:.2f} / {r['nginx_added_p50_ms']:.2f} | {_verdict(r)} | {kept} |"
        )
    caption = (
        "_Every request of the comparison says `Cache-Control: no-cache`, so the gateway forwards each one as "
        "nginx does; the last column is the same read without it, answered from the gateway's copy (a write has none)"
        + (f"; measured on its own at {section['when']} (`bench.run --only gateway`)._" if "when" in section else "._")
    )
    where = _where("the gateway", section.get("where_the_time_goes"))
    return [*lines, "", caption, *_gateway_cpu(section["rows"]), *where]


def _gateway_cpu(rows: list[dict[str, Any]]) -> list[str]:
    """The gateway process's CPU per request, one request at a time and sixteen at once."""
    measured = [r for r in rows if r.get("gateway_cpu_us")]
    if not measured:
        return []
    lines = [
        "",
        "| the gateway's own CPU µs per request | forwarded, 1 connection | forwarded, 16 "
        "| from its copy, 1 connection | from its copy, 16 |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in measured:
        cpu = r["gateway_cpu_us"]
        cells = [_n(cpu[side][n]) if side in cpu else "—" for side in ("gateway", "copy") for n in ("1", "16")]
        lines.append(f"| {r['scenario']} | {' | '.join(cells)} |")
    return lines


def ceiling(section: dict[str, Any]) -> list[str]:
    lines = [
        "| framework ceiling (closed loop, 16 connections) | read | req/s | of bare FastAPI | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['service']} | {r['read']} | {_n(r['requests_per_s'])} | {r['fraction_of_ceiling']:.2f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    return lines


def rates(section: dict[str, Any]) -> list[str]:
    lines = [
        "| capacity, distributed (open loop) | hot read | p95 SLO ms | highest rate within SLO, req/s "
        "| p95 ms there | plan's req/s | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['service']} | {r['read']} | {r['slo_p95_ms']:.0f} | {_n(r['highest_rate_within_slo'])} "
            f"| {_n(r['p95_ms_at_that_rate'], 1)} | {_n(r['plan_throughput'])} | {_verdict(r)} |"
        )
    return lines


def _cores(busy: dict[str, float]) -> str:
    return " / ".join(f"{share:.0%}" for _, share in sorted(busy.items())) or "—"


def _tail(over: dict[str, dict[str, int]]) -> str:
    """The requests slower than a service's objective, by route: which of them make its p95."""
    return ", ".join(f"{route} {c['slow']} of {c['of']}" for route, c in over.items())


def _arranged(server_cores: str | None) -> str:
    """Which row a students run measured on its own replaced: by the core arrangement it ran in."""
    if server_cores is None:
        return ""
    return " on both cores" if server_cores == "both" else " with the servers on one core"


def students(runs: list[dict[str, Any]]) -> list[str]:
    think = runs[0]["think_time_s"].replace("-", "–") if runs else "10–30"
    lines = [
        f"| concurrent students from a pre-made pool (think time {think} s) | held within every p95 SLO "
        "| req/s then | server CPU µs per request | server cores used / load generator's | broke at "
        "| first SLO broken | cores busy | target 10,000 |",
        "|---|---:|---:|---:|---|---:|---|---|---|",
    ]
    for r in runs:
        broken = ", ".join(
            f"{k} p95 {v['p95_ms']:.0f} ms" + (f", {v['errors']} errors" if v.get("errors") else "")
            for k, v in (r.get("broken_services") or {}).items()
        )
        used = r.get("server_cores_used")
        gen = r.get("load_generator_cores_used")
        arrangement = "" if r.get("server_cores", "one") == "one" else ", servers and load generator on both cores"
        lines.append(
            f"| {r['platform']}{arrangement} | {_n(r['students_held'])} | {_n(r['requests_per_s_at_that_load'])} "
            f"| {_n(r.get('cpu_us_per_request'))} | {'—' if used is None else f'{used:.2f} / {gen:.2f}'} "
            f"| {_n(r.get('broke_at_students')) if r['broke'] else 'did not break'} | {broken or '—'} "
            f"| {_cores(r.get('cores_busy') or {})} | {_verdict(r)} |"
        )
    steps = [
        "| step (students) | req/s | every SLO held | server CPU µs per request | server cores used "
        "| load generator cores used | slowest p95 |",
        "|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in runs:
        label = _step_label(r)
        for v in r.get("judged", []):
            slowest = max(v["services"].items(), key=lambda kv: kv[1]["p95_ms"], default=None)
            worst = f"{slowest[0]} {slowest[1]['p95_ms']:.0f} ms" if slowest else "—"
            if slowest and slowest[1].get("over_objective"):
                worst += f" (over its objective: {_tail(slowest[1]['over_objective'])})"
            steps.append(
                f"| {label} {_n(v['users'])} | {_n(v['rps'], 1)} | {'yes' if v['ok'] else '**no**'} "
                f"| {_n(v.get('cpu_us_per_request'))} | {_n(v.get('server_cores_used'), 2)} "
                f"| {_n(v.get('load_generator_cores_used'), 2)} "
                f"| {worst} |"
            )
    where = next((r["where_the_time_goes"] for r in runs if r.get("where_the_time_goes")), None)
    return lines + [""] + steps + by_process(runs) + _where("embedded platform under the students", where)


def _step_label(run: dict[str, Any]) -> str:
    """How a students run's steps are named: its platform, and its cores when it had both."""
    return run["platform"] + (", both cores," if run.get("server_cores", "one") == "both" else "")


_PROCESSES = ("gateway", "users", "courses", "enrollments", "payments", "assessments", "analytics", "communication")


def by_process(runs: list[dict[str, Any]]) -> list[str]:
    """Where the distributed platform's CPU went at each step of the students, by process, what the rest
    of the machine (the database, Redis, the broker, the trace sink, the kernel) kept busy beside it,
    and how many connections PostgreSQL opened to the platform over the step."""
    rows = [
        (r, v)
        for r in runs
        if r["platform"] == "distributed"
        for v in r.get("judged", [])
        if v.get("cpu_us_per_request_by_process")
    ]
    if not rows:
        return []
    lines = [
        "",
        "| server CPU µs per request served, by process (step) | "
        + " | ".join(_PROCESSES)
        + " | all | cores busy: servers / load generator / rest of the machine | PostgreSQL connections opened |",
        "|---" + "|---:" * (len(_PROCESSES) + 1) + "|---|---:|",
    ]
    for r, v in rows:
        label = _step_label(r)
        used = v["cpu_us_per_request_by_process"]
        servers, generator = v.get("server_cores_used") or 0.0, v.get("load_generator_cores_used") or 0.0
        rest = sum((v.get("cores_busy") or {}).values()) - servers - generator
        lines.append(
            f"| {label} {_n(v['users'])} | "
            + " | ".join(_n(used.get(name)) for name in _PROCESSES)
            + f" | {_n(v.get('cpu_us_per_request'))} | {servers:.2f} / {generator:.2f} / {max(rest, 0):.2f} "
            f"| {_n(v.get('connections_opened'))} |"
        )
    return lines


def saga_path(section: dict[str, Any]) -> list[str]:
    """The saga's synchronous path, per process: own code, and the statements and commands it waited on."""
    lines = [
        "| the enrolment saga's path, one saga at a time (medians) | own code ms | database statements "
        "| waiting on them ms | Redis commands | waiting on them ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in section["by_service"].items():
        lines.append(
            f"| {name} | {_n(row['own_ms'], 1)} | {_n(row['db_n'])} | {_n(row['db_ms'], 1)} "
            f"| {_n(row['redis_n'])} | {_n(row['redis_ms'], 1)} |"
        )
    lines += [
        "",
        f"_{section['sagas']} sagas at {section['when']}: {_n(section['p50_ms'], 1)} ms at p50 and "
        f"{_n(section['p95_ms'], 1)} ms at p95 as the student waits, unloaded; "
        f"{_n(section['call_rounds'])} rounds of calls one after another, {_n(section['db_statements'])} database "
        f"statements and {_n(section['redis_commands'])} Redis commands on the way "
        "(`python -m bench.saga_path`)._",
    ]
    return lines


def memory(section: dict[str, Any]) -> list[str]:
    lines = ["| resident memory (RSS) | idle MiB | under the students' load MiB |", "|---|---:|---:|"]
    embedded = section.get("embedded")
    if embedded:
        lines.append(f"| embedded platform (one process) | {_n(embedded['idle_mb'])} | {_n(embedded['load_mb'])} |")
    distributed = section.get("distributed")
    if distributed:
        for name, idle in distributed["idle_mb"].items():
            lines.append(f"| distributed: {name} | {_n(idle)} | {_n(distributed['load_mb'].get(name))} |")
        lines.append(
            f"| distributed: all {len(distributed['idle_mb'])} processes | {_n(sum(distributed['idle_mb'].values()))} "
            f"| {_n(sum(distributed['load_mb'].values()))} |"
        )
    return lines


def bus(section: dict[str, Any]) -> list[str]:
    bare, target = section["bare_pika"], section.get("target_events_per_s", 5000)
    lines = [
        "| event bus (outbox → RabbitMQ → idempotent consumer) | events/s | p50 ms | p99 ms | lost |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, measured in section.items():
        if key.startswith("platform") and isinstance(measured, dict) and "events_per_s" in measured:
            how = key.removeprefix("platform").strip("_").replace("_", " ")
            label = f"platform, {section['events']:,} events" + (f", {how}" if how else "")
            lines.append(
                f"| {label} | {measured['events_per_s']:,} | {measured['latency_p50_ms']} | "
                f"{measured['latency_p99_ms']} | {measured['events_lost']} |"
            )
    rate = section["platform"]["events_per_s"]
    verdict = "met" if rate >= target else f"**missed**: {1 - rate / target:.0%} short"
    lines += [
        f"| bare pika: publish / consume (reference) | {bare['publishes_per_s']:,} / {bare['consumes_per_s']:,}"
        " | | | |",
        f"| ratio to bare consume: {section['ratio_to_bare_consume']}; target {target:,} events/s: {verdict} | | | | |",
    ]
    return lines


def ingest(section: dict[str, Any]) -> list[str]:
    return [
        "| analytics ingest (HTTP → PostgreSQL) | events/s | ratio to raw COPY |",
        "|---|---:|---:|",
        f"| batches of 1,000 (target 50,000/s) | {section['batch_1000_events_per_s']:,.0f} | "
        f"{section['ratio_1000_to_copy']} |",
        f"| batches of 100 (target 10,000/s) | {section['batch_100_events_per_s']:,.0f} | "
        f"{section['ratio_100_to_copy']} |",
        f"| raw COPY of the same rows (reference) | {section['raw_copy_rows_per_s']:,.0f} | 1.0 |",
    ]


def migration(section: dict[str, Any]) -> list[str]:
    return [
        "| data migration (phase 3) | rows/s |",
        "|---|---:|",
        f"| cerebrum data migrate, {section['rows']:,} rows | {section['migrate_rows_per_s']:,} |",
        f"| pg_dump --data-only \\| psql (reference) | {section['pg_dump_psql_rows_per_s']:,} |",
    ]


def shadow(section: dict[str, Any]) -> list[str]:
    plain, mirrored = section["not_mirrored"], section["mirrored_to_hanging_side"]
    outcomes = ", ".join(f"{k} {v}" for k, v in section["mirror_outcomes"].items())
    target = f"added p50 ≤ {section['target_added_p50_ms']} ms: {_verdict(section)}"
    return [
        "| shadow traffic (side hangs) | p50 ms | p95 ms | p99 ms | target |",
        "|---|---:|---:|---:|---|",
        f"| not mirrored | {plain['p50_ms']:.2f} | {plain['p95_ms']:.2f} | {plain['p99_ms']:.2f} | |",
        f"| mirrored | {mirrored['p50_ms']:.2f} | {mirrored['p95_ms']:.2f} | {mirrored['p99_ms']:.2f} | {target} |",
        "",
        f"{section['requests_each']} requests each, interleaved; mirrors: {outcomes}.",
    ]


def markdown(results: dict[str, Any]) -> str:
    """Every table the run produced, in the order the issue lists them."""
    parts: list[list[str]] = []
    if "observability_tax" in results:
        parts.append(tax(results["observability_tax"]))
    if "gateway_overhead" in results:
        parts.append(gateway(results["gateway_overhead"]))
    if "framework_ceiling" in results:
        parts.append(ceiling(results["framework_ceiling"]))
    if "capacity" in results:
        parts.append(rates(results["capacity"]["rates"]))
        parts.append(students(results["capacity"]["students"]))
        run = results.get("students_run")
        if run:
            parts.append(
                [
                    f"_Students{_arranged(run.get('server_cores'))} measured on their own at {run['when']}, "
                    f"load average {run['machine'].get('load_average_before', '?')} at the start "
                    "(other work on this machine)._"
                ]
            )
    if results.get("cpu_per_request"):
        parts.append(cpu(results["cpu_per_request"]))
    if results.get("saga_path"):
        parts.append(saga_path(results["saga_path"]))
    if "memory" in results:
        parts.append(memory(results["memory"]))
    for key, table in (
        ("event_bus", bus),
        ("analytics_ingest", ingest),
        ("data_migration", migration),
        ("shadow_mirror", shadow),
    ):
        if results.get(key):
            parts.append(table(results[key]))
    machine = results.get("machine", {})
    footer = [
        f"_{results.get('when', '')}, {machine.get('cpus')} CPUs ({machine.get('cpu_model', '?')}), "
        f"load average {machine.get('load_average_before', '?')} at the start; servers on core "
        f"{machine.get('server_cpu')}, load generators on core {machine.get('load_cpu')}; "
        f"the run took {results.get('wall_seconds', 0) / 60:.1f} min. Commands, settings and profiles: "
        "bench/results.json._"
    ]
    return "\n\n".join("\n".join(part) for part in [*parts, footer]) + "\n"


if __name__ == "__main__":
    import json
    from pathlib import Path

    results = json.loads(Path("bench/results.json").read_text())
    Path("bench/results.md").write_text(markdown(results))
    print("bench: wrote bench/results.md from bench/results.json")
