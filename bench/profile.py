"""Where the time goes: py-spy on a server under load, summarised by function and by package.

``py-spy record --format speedscope`` samples every thread of the process while the load runs;
the file stays in bench/out for speedscope.app, and the summary (own time, total time, and own
time per package) goes into results.json.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import COMMANDS, OUT

RATE = 200
TOP = 8
INSTRUMENTATION = ("opentelemetry", "structlog", "prometheus_client", "observability")
_FRAMEWORK = frozenset(
    {"uvicorn", "asyncio", "stdlib", "other", "click", "uvloop", "event loop", "starlette", "fastapi", "anyio"}
)


def py_spy() -> str | None:
    """Finds py-spy, installing it from PyPI into this virtualenv when it is missing."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    print("bench: installing py-spy (PyPI) into the virtualenv…", flush=True)
    uv = Path(sys.executable).with_name("uv")
    argv = (
        [str(uv), "pip", "install", "-q", "--python", sys.executable, "py-spy"]
        if uv.exists()
        else [sys.executable, "-m", "pip", "install", "-q", "py-spy"]
    )
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """One recording; ``summary`` is filled in when the recording ends."""

    def __init__(self, name: str, path: Path, command: str) -> None:
        self.name = name
        self.path = path
        self.command = command
        self.summary: dict[str, Any] = {}


@contextmanager
def recording(name: str, pid: int, seconds: int, *, rate: int = RATE) -> Iterator[Profile]:
    """Records ``pid`` for up to ``seconds`` while the block runs the load; summarises afterwards."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"profile-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}.speedscope.json"
    tool = py_spy()
    argv = [tool or "py-spy", "record", "--format", "speedscope", "-o", str(path), "-d", str(seconds)]
    argv += ["-r", str(rate), "--nonblocking", "--pid", str(pid)]
    profile = Profile(name, path, " ".join(["py-spy", *argv[1:]]))
    if tool is None:
        profile.summary = {"error": "py-spy is not installed"}
        yield profile
        return
    COMMANDS.append(profile.command)
    path.unlink(missing_ok=True)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield profile
    finally:
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # the load ended early: py-spy writes what it has
        output = process.communicate(timeout=seconds + 30)[0].decode(errors="replace")
    if process.returncode != 0 or not path.exists():
        profile.summary = {"error": output.strip().splitlines()[-1] if output.strip() else "py-spy failed"}
        return
    profile.summary = summarise(path)
    profile.summary["command"] = profile.command


def _where(frame: dict[str, Any]) -> tuple[str, str, str]:
    """(function, short file, package) of a speedscope frame."""
    file = str(frame.get("file") or "")
    name = str(frame.get("name") or "?")
    package = "other"
    places = (("site-packages/", "library"), ("/lib/python3.11/", "stdlib"), (str(Path.cwd()) + "/", "ours"))
    for marker, kind in places:
        if marker in file:
            file = file.split(marker, 1)[1]
            head = file.split("/", 1)[0].removesuffix(".py")
            package = head if kind != "stdlib" or head == "asyncio" else "stdlib"
            break
    if name == "Runner.run" or package == "uvloop":
        package = "event loop"  # uvloop is C: its polling and socket I/O land on the frame that started it
    return name, file, package


def summarise(path: Path) -> dict[str, Any]:
    """Own time per function (with its callers), inclusive time in the libraries, own time per package."""
    document = json.loads(path.read_text())
    described = [_where(frame) for frame in document["shared"]["frames"]]
    frames = [(name, file) for name, file, _ in described]
    own: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    callers: dict[tuple[str, str], Counter[str]] = {}
    packages: Counter[str] = Counter()
    samples = 0
    for profile in document["profiles"]:
        for stack in profile["samples"]:
            if not stack:
                continue
            samples += 1
            leaf = frames[stack[-1]]
            own[leaf] += 1
            packages[described[stack[-1]][2]] += 1
            chain = " ← ".join(f"{frames[i][0]} ({frames[i][1]})" for i in reversed(stack[-4:-1]))
            callers.setdefault(leaf, Counter())[chain] += 1
            for index in {index for index in stack if described[index][2] not in _FRAMEWORK}:
                total[frames[index]] += 1
    if not samples:
        return {"samples": 0, "file": str(path)}

    def share(counter: Counter[Any], *, below: float = 1.01) -> list[dict[str, Any]]:
        rows = [(where, n / samples) for where, n in counter.most_common() if n / samples < below]
        return [{"frame": f"{name} ({file})", "share": round(s, 3)} for (name, file), s in rows[:TOP]]

    hottest = share(own)
    for row, (where, _) in zip(hottest[:3], own.most_common(3), strict=False):
        row["called_from"] = callers[where].most_common(1)[0][0]
    return {
        "file": str(path),
        "samples": samples,
        "own_time": hottest,
        # Inclusive time in the libraries and our code; the server, the framework and the
        # middleware that wraps every request sit under (nearly) every sample and are left out.
        "total_time": share(total, below=0.5),
        "own_time_by_package": {name: round(n / samples, 3) for name, n in packages.most_common(10)},
        "instrumentation_share": round(sum(packages[name] for name in INSTRUMENTATION) / samples, 3),
    }


def headline(summary: dict[str, Any], packages: int = 4) -> str:
    """One line for the table: the packages taking most of the time, and the hottest function."""
    if "own_time_by_package" not in summary:
        return f"no profile ({summary.get('error', 'no samples')})"
    shares = ", ".join(f"{name} {share:.0%}" for name, share in list(summary["own_time_by_package"].items())[:packages])
    hottest = next((row for row in summary["own_time"] if not row["frame"].startswith("Runner.run ")), None)
    top = f"; hottest: {hottest['frame']} {hottest['share']:.0%}" if hottest else ""
    if hottest and hottest.get("called_from"):
        top += f", called from {hottest['called_from'].split(' ← ')[0]}"
    return f"own time by package: {shares}{top}"
