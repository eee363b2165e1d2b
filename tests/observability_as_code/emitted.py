"""What the code declares and what the running platform emits, as Prometheus series names."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import services
from cerebrum.demo import seed_academy
from cerebrum.platform import Platform
from observability import metrics as observability_metrics
from tests.observability_as_code.promql import ALL_RULE_FILES, ROOT, Query, dashboard_queries, rules, selectors

# The series Prometheus stores for one metric family of each type (OpenMetrics names families
# without the suffixes; _created is left out: Prometheus does not store it by default).
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""


def series_names(family: str, kind: str) -> list[str]:
    return [family + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",))]


def import_all_services() -> dict[str, str]:
    """Imports every module under services/ (so that each declares its metrics); returns failures."""
    failures = {}
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if ".migrations" in module.name:
            continue
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # another team's module mid-edit: reported, not fatal
            failures[module.name] = f"{type(exc).__name__}: {exc}"
    return failures


def declared_series() -> dict[str, frozenset[str]]:
    """Every series name the process's registry can produce, with the label names it carries."""
    found: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        for name in series_names(family.name, family.type):
            found[name] = frozenset()
    # Our metrics are declared through observability.metrics, which keeps them by name; their
    # label names are there even before a labelled child exists.
    for metric in observability_metrics._declared.values():
        labels = frozenset(metric._labelnames)
        for name in series_names(metric._name, metric._type):
            found[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return found


@dataclass
class Scrape:
    """One exposition's samples: series name -> label set -> value, and exemplars seen."""

    values: dict[str, dict[frozenset[tuple[str, str]], float]] = field(default_factory=dict)
    exemplars: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                scrape.values.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
                if sample.exemplar is not None:
                    scrape.exemplars.setdefault(sample.name, []).append(dict(sample.exemplar.labels))
        return scrape

    def changed_since(self, before: Scrape) -> dict[str, set[frozenset[tuple[str, str]]]]:
        """Series that appeared or moved since ``before``, by name (what happened in between)."""
        moved: dict[str, set[frozenset[tuple[str, str]]]] = {}
        for name, series in self.values.items():
            old = before.values.get(name, {})
            for labels, value in series.items():
                if old.get(labels) != value:
                    moved.setdefault(name, set()).add(labels)
        return moved


def registry_now() -> Scrape:
    return Scrape.parse(generate_latest(REGISTRY).decode())


async def student_journey(platform: Platform, api: httpx.AsyncClient) -> None:
    """A student signs up, logs in, browses, searches and takes a test; every service is called."""
    await seed_academy(platform.apps)
    account = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "Krebs-cycle-2026", "full_name": "O Bserver"}
    assert (await api.post("/api/auth/register", json=account)).status_code == 201
    wrong = {"email": account["email"], "password": "not-the-password-1"}
    assert (await api.post("/api/auth/login", json=wrong)).status_code == 401
    login = await api.post("/api/auth/login", json={"email": account["email"], "password": account["password"]})
    assert login.status_code == 200
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await api.get("/api/users/profile", headers=bearer)).status_code == 200

    courses = (await api.get("/api/courses")).json()["items"]
    for _ in range(2):  # a cache miss, then a hit
        assert (await api.get(f"/api/courses/{courses[0]['id']}")).status_code == 200
    assert (await api.get(f"/api/courses/{uuid.uuid4()}")).status_code == 404
    assert (await api.get("/api/courses/search", params={"q": "genetics"})).status_code == 200

    attempt = str(uuid.uuid4())
    drawn = await api.get(
        "/api/questions/random", headers=bearer, params={"topic": "genetics", "count": 3, "attempt_id": attempt}
    )
    assert drawn.status_code == 200
    answers = [
        {"question_id": q["id"], "choice": 0} if q.get("options") else {"question_id": q["id"], "text": "Mendel"}
        for q in drawn.json()["questions"]
    ]
    submitted = await api.post(
        "/api/assessments/submit",
        headers=bearer,
        json={"attempt_id": attempt, "topic": "genetics", "answers": answers, "duration_seconds": 90},
    )
    assert submitted.status_code == 201, submitted.text

    # Every service the platform runs answers at least once, whatever it is (services are being
    # added to the registry while this is written; each records RED under its own name).
    for name, app in platform.apps.items():
        if name != "gateway":
            segment = next(s for s, target in platform.routes.items() if target is app)
            await api.get(f"/{segment}/")


def queried_by(queries: list[Query]) -> dict[str, list[str]]:
    """Each metric the queries select, with where it is queried (dashboard panel, rule)."""
    found: dict[str, list[str]] = defaultdict(list)
    for query in queries:
        for selector in selectors(query.expr):
            found[selector.metric].append(query.where)
    return dict(found)


def alert_and_panel_queries() -> list[Query]:
    """Every query an SRE's Prometheus and Grafana run: every rules file under alerts/ and every panel."""
    rule_queries = [
        Query(f"{path.relative_to(ROOT)} {rule.get('alert') or rule.get('record')}", rule["expr"])
        for path in ALL_RULE_FILES
        for rule in rules([path])
    ]
    return rule_queries + dashboard_queries()
