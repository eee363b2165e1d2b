"""bench/results.md's tables of server CPU per request: by request type (``bench.cpu``), with the
academy's mix priced by ``bench.sizing``, and a transaction by the way it reaches PostgreSQL
(``bench.dbpath``).
"""

from __future__ import annotations

from typing import Any

from bench.sizing import prices_the_mix, sizing


def cpu_comparison(comparison: dict[str, Any]) -> list[str]:
    """Server CPU µs per request by request type, each run of the comparison side by side."""
    runs = comparison["runs"]
    head = " | ".join(f"{r['label']} µs (gateway / owner / others)" for r in runs)
    change = comparison.get("change") or "as measured"
    lines = [
        f"Server CPU per request through the gateway, {change} ({comparison['when']}, "
        f"{comparison['requests_each'] - 1} of each, {comparison.get('concurrency', 1)} at a time, "
        + (
            f"the platforms side by side taking turns in {comparison['rounds']} rounds, "
            if "rounds" in comparison
            else ""
        )
        + "kept-alive connections but for the row that says otherwise):",
        "",
        f"| request | {head} |" + (" change |" if len(runs) > 1 else ""),
        "|---|" + "---:|" * len(runs) + ("---:|" if len(runs) > 1 else ""),
    ]
    by_run = [{row["request"]: row for row in r["rows"]} for r in runs]
    for kind in by_run[0]:
        cells = []
        for rows in by_run:
            row = rows.get(kind)
            cells.append(
                "—"
                if row is None
                else f"{row['cpu_us']:,} ({row['gateway']:,} / {row['owning_service']:,} / {row['others']:,})"
            )
        line = f"| {kind} | " + " | ".join(cells) + " |"
        if len(runs) > 1 and kind in by_run[-1]:
            first, last = by_run[0][kind]["cpu_us"], by_run[-1][kind]["cpu_us"]
            line += f" {(last - first) / first:+.0%} |" if first else " — |"
        lines.append(line)
    if all(prices_the_mix(r["rows"]) for r in runs):
        means = [sizing(r["rows"])["mean_cpu_us_per_request"] for r in runs]
        line = "| the academy's mix, weighted as the locustfile weighs it (`bench.sizing`) | "
        line += " | ".join(f"{mean:,}" for mean in means) + " |"
        if len(means) > 1:
            line += f" {(means[-1] - means[0]) / means[0]:+.0%} |"
        lines.append(line)
    if all("connections_opened" in r for r in runs):
        opened = ", ".join(f"{r['label']} {r['connections_opened']:,}" for r in runs)
        lines += ["", f"_Connections PostgreSQL opened while measuring: {opened}._"]
    return lines


_DB_WAYS = {
    "orm": "mapped objects, the kit's unit of work",
    "session": "table statements, the kit's unit of work",
    "core": "a SQLAlchemy Core connection",
    "asyncpg": "asyncpg alone",
}


def db_path(result: dict[str, Any] | None) -> list[str]:
    """The table of ``python -m bench.dbpath``: CPU per transaction by the way it reaches PostgreSQL."""
    if not result:
        return []
    rows = result["rows"]
    base = next(row["one_read_us"] for row in rows if row["way"] == "asyncpg")
    lines = [
        "| a transaction, by the way it reaches PostgreSQL (`python -m bench.dbpath`) | one read, CPU µs "
        "| × asyncpg | three reads | one insert | per statement | per transaction |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {_DB_WAYS.get(row['way'], row['way'])} | {row['one_read_us']:,} | {row['one_read_us'] / base:.1f} "
            f"| {row['three_reads_us']:,} | {row['one_insert_us']:,} | {row['per_statement_us']:,} "
            f"| {row['per_transaction_us']:,} |"
        )
    when = f" at {result['when']}" if result.get("when") else ""
    caption = (
        f"_Measured{when}, {result['rounds']} rounds of {result['transactions_per_round']} transactions each way, "
        "the ways taking turns; the median round. A statement is half the difference between one read and three, "
        "taken within each round._"
    )
    return [*lines, "", caption, ""]


def cpu(section: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    hiredis = section.get("hiredis")
    if hiredis:
        off, on = hiredis["python_parser_us"], hiredis["hiredis_us"]
        lines += [
            "| the question paper's pool read (SDIFF, "
            f"{hiredis['members']:,} ids) | CPU µs, redis-py's Python parser | CPU µs, hiredis | change |",
            "|---|---:|---:|---:|",
            f"| `python -m bench.hiredis`, one process each | {off:,} | {on:,} | {(on - off) / off:+.0%} |",
            "",
        ]
    upserts = section.get("analytics_upserts")
    if upserts:
        lines += [
            "| analytics: a consumed event's five upserts | CPU µs built per event | CPU µs built once |",
            "|---|---:|---:|",
            f"| `python -m bench.upserts` | {upserts['built_per_event_us']:,} | {upserts['built_once_us']:,} |",
            "",
        ]
    lines += db_path(section.get("db_path"))
    for comparison in section.get("comparisons", []):
        lines += [*cpu_comparison(comparison), ""]
    return lines[:-1]
