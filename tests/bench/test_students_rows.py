"""The students' rows of bench/results.json: a run on its own replaces only its own arrangement's row."""

from __future__ import annotations

from typing import Any

from bench.report import by_process
from bench.run import best, doubling_from, headline, merged


def _run(platform: str, cores: str, held: int) -> dict[str, Any]:
    return {
        "platform": platform,
        "server_cores": cores,
        "students_held": held,
        "think_time_s": "10-30",
        "requests_per_s_at_that_load": held / 12,
        "cpu_us_per_request": 4_000,
        "cpu_us_per_request_by_process": {},
        "server_cores_used": 0.9,
        "load_generator_cores_used": 0.1,
        "broke_at_students": held * 2,
        "broken_services": {},
    }


def test_a_students_run_on_its_own_replaces_its_arrangement_and_keeps_the_others() -> None:
    one, embedded = _run("distributed", "one", 1_600), _run("embedded", "one", 1_600)
    rows = merged([one, embedded, _run("distributed", "both", 2_400)], [_run("distributed", "both", 3_000)])

    assert [(r["platform"], r["server_cores"], r["students_held"]) for r in rows] == [
        ("distributed", "one", 1_600),
        ("embedded", "one", 1_600),
        ("distributed", "both", 3_000),
    ]
    # A first run of an arrangement joins the others.
    assert len(merged([one, embedded], [_run("distributed", "both", 3_000)])) == 3


def test_the_headline_is_the_run_that_held_the_most_and_says_on_which_cores() -> None:
    runs = [_run("distributed", "one", 1_600), _run("embedded", "one", 1_600), _run("distributed", "both", 3_000)]

    figure = headline(best(runs))

    assert (figure["held_within_slo"], figure["server_cores"]) == (3_000, "both")
    # Equal figures: the first run (the servers on one core) leads.
    assert best(runs[:2]) is runs[0]


def test_both_cores_start_doubling_from_what_one_core_held() -> None:
    levels = "100,200,400,800,1600,3200,6400,10000,12000"

    assert doubling_from(1_600, levels) == "1600,3200,6400,12000"
    assert doubling_from(0, levels) == "100,200,400,800,1600,3200,6400,12000"


def test_each_distributed_step_shows_its_cpu_by_process_the_rest_of_the_machine_and_connections_opened() -> None:
    step = {
        "users": 5_000,
        "cpu_us_per_request": 1_967,
        "cpu_us_per_request_by_process": {"gateway": 598, "courses": 139, "enrollments": 273},
        "server_cores_used": 0.84,
        "load_generator_cores_used": 0.19,
        "cores_busy": {"cpu0": 0.63, "cpu1": 0.63},
        "connections_opened": 31,
    }
    runs = [
        {**_run("distributed", "both", 5_000), "judged": [step]},
        {**_run("embedded", "one", 800), "judged": [step]},
    ]

    table = by_process(runs)

    header = [cell.strip() for cell in table[1].split("|")[1:-1]]
    row = [cell.strip() for cell in table[3].split("|")[1:-1]]
    assert len(table) == 4, "one row a step, of the distributed platform only"
    by_column = dict(zip(header, row, strict=True))
    assert by_column["server CPU µs per request served, by process (step)"] == "distributed, both cores, 5,000"
    shown = (by_column["gateway"], by_column["courses"], by_column["users"], by_column["all"])
    assert shown == ("598", "139", "—", "1,967")
    assert by_column["cores busy: servers / load generator / rest of the machine"] == "0.84 / 0.19 / 0.23"
    assert by_column["PostgreSQL connections opened"] == "31"
