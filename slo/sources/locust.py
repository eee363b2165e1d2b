"""SLIs from a Locust run: its JSON stats (exact response times) or, failing that, its CSV stats.

Each request name is mapped to a service by its gateway prefix (``/api/courses/[id]`` → courses).
Steps named ``[skipped] ...`` (a prefix not served yet) are never judged; ``[setup] ...`` steps
(each simulated student's sign-up and first login) only with ``include_setup``.
A request counts as an error when Locust recorded it as a failure: a 5xx, no answer at all, or a
status the journey step did not expect (slo/load/journeys.py decides).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from slo.sli import Histogram, ServiceSample
from slo.spec import SpecError

SKIPPED_PREFIX = "[skipped]"
SETUP_PREFIX = "[setup]"
# Locust's CSV has these percentile columns; with no JSON they stand in for the full histogram.
_CSV_PERCENTILES = (0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)


def route_of(name: str) -> str:
    """``GET /api/courses/[id]?q=x`` → ``/courses/[id]``: the service path a request name stands for."""
    path = name.split("?", 1)[0].split(" ", 1)[-1]
    if path.startswith("http://") or path.startswith("https://"):
        path = "/" + path.split("/", 3)[-1]
    return path.removeprefix("/api") or "/"


def service_of(name: str, prefixes: dict[str, str]) -> str | None:
    """``/api/courses/[id]?q=x`` → ``courses`` (by the gateway prefix table); None if unknown."""
    return prefixes.get(route_of(name).strip("/").split("/", 1)[0])


def _judged(name: str, include_setup: bool) -> bool:
    if name == "Aggregated" or name.startswith(SKIPPED_PREFIX):
        return False
    return include_setup or not name.startswith(SETUP_PREFIX)


def _by_service(
    routes: dict[tuple[str, str], ServiceSample], times: dict[tuple[str, str], dict[float, float]]
) -> dict[str, ServiceSample]:
    for key, counts in times.items():
        routes[key].latency = Histogram.from_counts(counts, exact=True)
    grouped: dict[str, dict[str, ServiceSample]] = {}
    for (service, route), sample in routes.items():
        grouped.setdefault(service, {})[route] = sample
    return {service: ServiceSample.of_routes(service, by_route) for service, by_route in grouped.items()}


def _from_json(
    entries: list[dict[str, Any]], prefixes: dict[str, str], include_setup: bool
) -> tuple[dict[str, ServiceSample], float]:
    routes: dict[tuple[str, str], ServiceSample] = {}
    times: dict[tuple[str, str], dict[float, float]] = {}
    started, ended = float("inf"), 0.0
    setup: dict[str, float] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if not _judged(name, include_setup):
            if name.startswith(SETUP_PREFIX) and (owner := service_of(name, prefixes)):
                setup[owner] = setup.get(owner, 0) + entry["num_requests"]
            continue
        service = service_of(name, prefixes)
        if service is None:
            continue
        key = (service, route_of(name))
        sample = routes.setdefault(key, ServiceSample(service=service))
        sample.requests += entry["num_requests"]
        sample.errors += entry["num_failures"]
        counts = times.setdefault(key, {})
        for ms, count in entry.get("response_times", {}).items():
            counts[float(ms) / 1000] = counts.get(float(ms) / 1000, 0) + count
        if entry.get("num_requests"):
            started = min(started, entry.get("start_time") or started)
            ended = max(ended, entry.get("last_request_timestamp") or 0.0)
    samples = _by_service(routes, times)
    for service, count in setup.items():
        note = f"{count:g} setup requests (sign-up, first login) not judged; --include-setup judges them"
        samples.setdefault(service, ServiceSample(service=service)).notes.append(note)
    return samples, (ended - started if ended > started else 0.0)


def _from_csv(path: Path, prefixes: dict[str, str], include_setup: bool) -> dict[str, ServiceSample]:
    routes: dict[tuple[str, str], ServiceSample] = {}
    counts: dict[tuple[str, str], dict[float, float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            name = row.get("Name", "")
            if not _judged(name, include_setup):
                continue
            service = service_of(name, prefixes)
            if service is None:
                continue
            key = (service, route_of(name))
            requests = float(row["Request Count"])
            sample = routes.setdefault(key, ServiceSample(service=service))
            sample.requests += requests
            sample.errors += float(row["Failure Count"])
            # Only percentiles survive in the CSV: put each percentile's share of requests at its value.
            route_counts, previous = counts.setdefault(key, {}), 0.0
            for q in _CSV_PERCENTILES:
                value = row.get(f"{q * 100:g}%")
                if value in (None, "", "N/A"):
                    continue
                seconds = float(value) / 1000
                route_counts[seconds] = route_counts.get(seconds, 0.0) + requests * q - previous
                previous = requests * q
    samples = _by_service(routes, counts)
    for sample in samples.values():
        sample.notes.append("latency from Locust's CSV percentiles (approximate)")
    return samples


# Above this many runnable processes per CPU, the host (shared with the platform and Locust) was
# busy enough that response times measure the host as much as the academy.
OVERSUBSCRIBED = 2.0


def _run(directory: Path) -> tuple[float | None, list[str]]:
    """The run's measured seconds, and notes on how far its numbers can be trusted."""
    run = directory / "run.json"
    if not run.exists():
        return None, []
    data = json.loads(run.read_text())
    notes = []
    host = data.get("host") or {}
    cpus, load = float(host.get("cpus") or 1), float(host.get("load_average_max") or 0)
    if load / cpus > OVERSUBSCRIBED:
        notes.append(
            f"the load host was oversubscribed (load average up to {load:g} on {cpus:g} CPUs): "
            "latencies measure the host as much as the academy"
        )
    return (float(data["seconds"]) if data.get("seconds") else None), notes


def read_locust(path: Path, prefixes: dict[str, str], *, include_setup: bool = False) -> dict[str, ServiceSample]:
    """Reads a run folder (``stats.json``, else ``stats_stats.csv``) or one JSON or CSV stats file."""
    directory = path if path.is_dir() else path.parent
    if path.is_dir():
        candidates = [path / "stats.json", *sorted(path.glob("*_stats.csv"))]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise SpecError(f"{path}: no Locust stats here (stats.json or *_stats.csv)")
        path = found
    if not path.exists():
        raise SpecError(f"{path}: no such Locust stats file")
    seconds, notes = _run(directory)
    if path.suffix == ".json":
        entries = json.loads(path.read_text())
        samples, spread = _from_json(entries, prefixes, include_setup)
        seconds = seconds or spread or None
    else:
        samples = _from_csv(path, prefixes, include_setup)
    for sample in samples.values():
        for counted in (sample, *sample.routes.values()):
            counted.seconds = seconds
        sample.notes.extend(notes)
    return samples
