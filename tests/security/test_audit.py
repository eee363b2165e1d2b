"""Static analysis (bandit) of our code. Known vulnerabilities in the dependencies are checked by
pip-audit in the GitHub workflow: its advisory look-ups (PyPI's per-version JSON, OSV) are not
reachable from this project's own CI network, where it would report a false "nothing found".

Bandit must come back clean. A finding that is not a vulnerability gets a ``# nosec <id>`` (with its
reason) on the reported line, and a line in docs/security.md saying why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["services", "observability", "cerebrum"]
PYPI_JSON = "https://pypi.org/pypi/{name}/{version}/json"


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed command line of our own tools
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_bandit_finds_nothing_medium_or_worse() -> None:
    done = run("bandit", "-r", *SOURCES, "-ll", "-f", "json", "-q", timeout=120)
    assert done.returncode in (0, 1), f"bandit did not run: {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert not report["errors"], f"bandit could not read: {report['errors']}"
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} ({r['issue_severity']}/{r['issue_confidence']}) "
        f"{r['issue_text']}"
        for r in report["results"]
    ]
    assert not findings, "bandit findings (fix them, or annotate each as docs/security.md explains):\n" + "\n".join(
        findings
    )


def _probe(name: str, version: str) -> str:
    url = PYPI_JSON.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - a fixed https URL
            return f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except OSError as exc:
        return f"{url} unreachable: {exc}"
