"""The checks a gate's criteria name: SLOs under load, readiness, rules, dashboards, data, tests, chaos.

Each reads what the gate run was given and answers with an Outcome; a check that was not given
its input raises MissingInput. The canary checks of phase 6 live in slo/canary_checks.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from slo.durations import parse_duration
from slo.evaluate import evaluate
from slo.gate_model import GateInputs, MissingInput, Outcome
from slo.scoring import Verdict
from slo.sli import ServiceSample
from slo.sources import PrometheusClient, read_locust, read_prometheus, read_scrape
from slo.sources.prometheus import PrometheusError
from slo.spec import prefix_table

Check = Callable[[GateInputs, dict[str, Any]], Outcome]


def read_samples(inputs: GateInputs, services: list[str]) -> tuple[str, dict[str, ServiceSample]]:
    """Measured SLIs from the first source given: Locust stats, then Prometheus, then a scrape."""
    if inputs.stats is not None:
        return f"locust ({inputs.stats})", read_locust(inputs.stats, prefix_table(inputs.specs))
    if inputs.prometheus_url is not None:
        client = PrometheusClient(inputs.prometheus_url)
        try:
            return f"prometheus ({inputs.prometheus_url})", read_prometheus(client, services, inputs.window)
        finally:
            client.close()
    if inputs.url is not None:
        return f"scrape ({inputs.url})", read_scrape(inputs.url, client=_client(inputs))
    raise MissingInput("no SLI source: give --stats, --prometheus-url or --url")


def _client(inputs: GateInputs) -> httpx.Client:
    return httpx.Client(timeout=30, transport=inputs.transport)


def check_slo(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    services = inputs.services or list(params.get("services") or inputs.specs)
    specs = {name: inputs.specs[name] for name in services if name in inputs.specs}
    source, samples = read_samples(inputs, services)
    evaluation = evaluate(
        specs, samples, source=source, window=inputs.window, capacity=bool(params.get("capacity", False))
    )
    per_service = ", ".join(f"{s.service} {s.verdict}" for s in evaluation.services)
    return Outcome(
        evaluation.verdict,
        f"every SLO of {', '.join(services)}" + (" at capacity" if params.get("capacity") else ""),
        f"score {evaluation.score:g}" if evaluation.score is not None else "no score",
        per_service,
        evaluation,
    )


def check_load_users(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    target = inputs.target_users or int(params.get("target_users", 10_000))
    if inputs.stats is None:
        raise MissingInput("no --stats (a `cerebrum load run` folder) given")
    run = (inputs.stats if inputs.stats.is_dir() else inputs.stats.parent) / "run.json"
    if not run.exists():
        raise MissingInput(f"{run} not found: the run's peak users are unknown")
    users = int(json.loads(run.read_text()).get("peak_users", 0))
    verdict = Verdict.PASS if users >= target else Verdict.FAIL
    return Outcome(verdict, f">= {target:,} users", f"{users:,} users", f"from {run}")


def check_ready(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    urls = [*([inputs.url.rstrip("/") + "/ready"] if inputs.url else []), *params.get("urls", [])]
    if not urls:
        raise MissingInput("no --url given")
    failed = []
    with _client(inputs) as client:
        for url in urls:
            try:
                response = client.get(url)
                if response.status_code != 200:
                    failed.append(f"{url} {response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                failed.append(f"{url}: {exc}")
    verdict = Verdict.FAIL if failed else Verdict.PASS
    return Outcome(
        verdict, "every /ready answers 200", f"{len(urls) - len(failed)}/{len(urls)} ready", "; ".join(failed)
    )


def _rule_files(root: Path, patterns: list[str]) -> list[Path]:
    files = sorted({p for pattern in patterns for p in root.glob(pattern)})
    return [f for f in files if "tests" not in f.relative_to(root).parts]


def check_rules(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    promtool = shutil.which("promtool")
    if promtool is None:
        raise MissingInput("promtool is not installed (apt-get install prometheus)")
    root = inputs.repo_root
    rules = _rule_files(root, params.get("rules", ["alerts/*.yml", "alerts/slo/*.yml"]))
    tests = sorted({p for pattern in params.get("tests", ["alerts/slo/tests/*.yml"]) for p in root.glob(pattern)})
    if not rules:
        raise MissingInput(f"no rule files under {root}")
    problems = []
    for args in (["check", "rules", *map(str, rules)], ["test", "rules", *map(str, tests)] if tests else None):
        if args is None:
            continue
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            problems.append(f"promtool {args[0]} rules: {(done.stdout + done.stderr).strip()[-400:]}")
    verdict = Verdict.FAIL if problems else Verdict.PASS
    return Outcome(
        verdict,
        "promtool check and test pass",
        f"{len(rules)} rule files, {len(tests)} test files",
        "; ".join(problems),
    )


def check_dashboards(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    pattern = params.get("glob", "dashboards/**/*.json")
    files = sorted(inputs.repo_root.glob(pattern))
    if not files:
        raise MissingInput(f"no dashboards match {pattern}")
    broken = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            broken.append(f"{path.name}: {exc}")
            continue
        board = data.get("dashboard", data) if isinstance(data, dict) else {}
        if not isinstance(board, dict) or not board.get("title") or not isinstance(board.get("panels"), list):
            broken.append(f"{path.name}: not a Grafana dashboard (title and panels)")
    verdict = Verdict.FAIL if broken else Verdict.PASS
    return Outcome(verdict, "every dashboard loads", f"{len(files) - len(broken)}/{len(files)} load", "; ".join(broken))


def check_reconciliation(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    if inputs.reconciliation is None:
        raise MissingInput("no --reconciliation report given")
    try:
        report = json.loads(inputs.reconciliation.read_text())
        tables = report["tables"]
        lost = [
            f"{t['table']}: {t['source_rows']} → {t['target_rows']} rows, {len(t.get('differences', []))} differences"
            for t in tables
            if t["source_rows"] != t["target_rows"] or t.get("differences")
        ]
        total = int(report["total_differences"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Outcome(Verdict.FAIL, "zero rows lost", "unreadable", f"{inputs.reconciliation}: {exc!r}")
    verdict = Verdict.PASS if not lost and total == 0 and tables else Verdict.FAIL
    detail = "; ".join(lost) or ("no tables in the report" if not tables else f"{len(tables)} tables match")
    return Outcome(verdict, "zero rows lost, zero differences", f"{total} differences", detail)


def check_junit(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    if not inputs.junit:
        raise MissingInput("no --junit report given")
    tests = failed = 0
    for path in inputs.junit:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            return Outcome(Verdict.FAIL, "every test passes", "unreadable", f"{path}: {exc}")
        suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
        for suite in suites:
            tests += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    verdict = Verdict.PASS if tests and not failed else Verdict.FAIL if failed else Verdict.INCONCLUSIVE
    return Outcome(verdict, "every journey and contract test passes", f"{tests - failed}/{tests} passed")


def check_events(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    """Events delivered: nothing dead-lettered, nothing stuck in an outbox, and something published."""
    values: dict[str, float] = {}
    names = {
        "published": "cerebrum_events_published_total",
        "dead_lettered": "cerebrum_events_dead_lettered_total",
        "pending": "cerebrum_outbox_pending_events",
    }
    if inputs.prometheus_url:
        client = PrometheusClient(inputs.prometheus_url)
        try:
            values = {key: client.scalar(f"sum({metric})") for key, metric in names.items()}
        except PrometheusError as exc:
            return Outcome(Verdict.INCONCLUSIVE, "events delivered", "no answer", str(exc))
        finally:
            client.close()
    elif inputs.url:
        from prometheus_client.parser import text_string_to_metric_families

        with _client(inputs) as http:
            text = http.get(inputs.url.rstrip("/") + "/metrics", headers={"Accept": "text/plain"}).text
        wanted = {metric: key for key, metric in names.items()}
        values = dict.fromkeys(names, 0.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    values[wanted[sample.name]] += sample.value
    else:
        raise MissingInput("no --prometheus-url or --url to read event metrics from")
    measured = (
        f"{values['published']:g} published, {values['dead_lettered']:g} dead-lettered, {values['pending']:g} pending"
    )
    if not values["published"]:
        return Outcome(Verdict.INCONCLUSIVE, "events delivered", measured, "no event was published")
    limit = float(params.get("max_pending", 0))
    ok = values["dead_lettered"] == 0 and values["pending"] <= limit
    return Outcome(Verdict.PASS if ok else Verdict.FAIL, f"0 dead-lettered, <= {limit:g} pending", measured)


def check_chaos(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    """Chaos Toolkit journals: each run completed and its steady state held afterwards."""
    if not inputs.chaos:
        raise MissingInput("no --chaos journal given")
    failed = []
    for path in inputs.chaos:
        try:
            journal = json.loads(Path(path).read_text())
            title = journal.get("experiment", {}).get("title", path.name)
            after = (journal.get("steady_states") or {}).get("after") or {}
            if journal.get("status") != "completed" or after.get("steady_state_met") is not True:
                failed.append(
                    f"{title}: status {journal.get('status')}, steady state after {after.get('steady_state_met')}"
                )
        except (OSError, ValueError, AttributeError) as exc:
            failed.append(f"{path}: {exc!r}")
    verdict = Verdict.FAIL if failed else Verdict.PASS
    measured = f"{len(inputs.chaos) - len(failed)}/{len(inputs.chaos)} held"
    return Outcome(verdict, "every experiment completed, steady state met", measured, "; ".join(failed))


def check_alerts(inputs: GateInputs, params: dict[str, Any]) -> Outcome:
    if not inputs.prometheus_url:
        raise MissingInput("no --prometheus-url to ask for firing alerts")
    severities = set(params.get("severities", []))
    client = PrometheusClient(inputs.prometheus_url)
    try:
        alerts = client.alerts()
    except PrometheusError as exc:
        return Outcome(Verdict.INCONCLUSIVE, "no firing alerts", "no answer", str(exc))
    finally:
        client.close()
    firing = [
        a
        for a in alerts
        if a.get("state") == "firing" and (not severities or a.get("labels", {}).get("severity") in severities)
    ]
    names = ", ".join(sorted({f"{a['labels'].get('alertname')}({a['labels'].get('service', '')})" for a in firing}))
    return Outcome(
        Verdict.FAIL if firing else Verdict.PASS,
        "no firing alerts" + (f" of severity {', '.join(sorted(severities))}" if severities else ""),
        f"{len(firing)} firing",
        names,
    )


def step_seconds(params: dict[str, Any]) -> float:
    return parse_duration(params.get("step_duration", "1h"))
