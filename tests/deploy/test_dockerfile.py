"""Dockerfile and .dockerignore, checked without Docker: stages, user, health check, context, commands."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
import tomllib
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer.main
from dockerfile_parse import DockerfileParser

from tests.deploy import kustomize
from tests.deploy.conftest import COMPOSE_DIR, OVERLAYS, REPO, by_kind, load_yaml

Instruction = dict[str, Any]
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# Set by the python:*-slim base image (or Docker) rather than by this Dockerfile.
INHERITED = {"PATH", "HOME", "LANG", "PYTHON_VERSION", "GPG_KEY"}


def stages() -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per build stage (comments dropped)."""
    parsed: list[list[Instruction]] = []
    for instruction in DockerfileParser(path=str(REPO / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            parsed.append([])
        if parsed and instruction["instruction"] != "COMMENT":
            parsed[-1].append(instruction)
    return parsed


def only(stage: list[Instruction], name: str) -> Instruction:
    (found,) = [instruction for instruction in stage if instruction["instruction"] == name]
    return found


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed)
    return parsed


def healthcheck_command() -> list[str]:
    value = only(stages()[-1], "HEALTHCHECK")["value"]
    return exec_form(value.split(" CMD ", 1)[1].strip())


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    text = re.escape(pattern.strip("/"))
    text = text.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.compile(text + r"\Z")


def excluded(path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins, and a pattern matching a parent matches."""
    parts = path.split("/")
    result = False
    for pattern in dockerignore():
        negated = pattern.startswith("!")
        regex = glob_to_regex(pattern.removeprefix("!"))
        if any(regex.match("/".join(parts[:depth])) for depth in range(1, len(parts) + 1)):
            result = not negated
    return result


def test_the_build_has_a_builder_and_a_slim_runtime_stage() -> None:
    parsed = DockerfileParser(path=str(REPO / "Dockerfile"))
    assert parsed.is_multistage
    builder, runtime = stages()
    assert only(builder, "FROM")["value"].endswith(" AS builder")
    assert parsed.parent_images[-1] == "python:3.11-slim"
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "the runtime stage takes the venv and nothing else"
    builder_runs = " ".join(i["value"] for i in builder if i["instruction"] == "RUN")
    assert "uv build --wheel" in builder_runs and "uv pip install" in builder_runs


def test_the_runtime_runs_as_an_unprivileged_user() -> None:
    runtime = stages()[-1]
    user = only(runtime, "USER")["value"]
    uid = user.split(":")[0]
    assert uid == "10001" and user.split(":")[1] != "0"
    setup = " ".join(i["value"] for i in runtime if i["instruction"] == "RUN")
    assert "--uid 10001" in setup
    names = [i["instruction"] for i in runtime]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name in ("RUN", "COPY"))


def test_the_image_runs_cerebrum_and_defaults_to_the_gateway() -> None:
    runtime = stages()[-1]
    assert exec_form(only(runtime, "ENTRYPOINT")["value"]) == ["cerebrum"]
    command = exec_form(only(runtime, "CMD")["value"])
    assert command[:2] == ["serve", "gateway"] and command[command.index("--host") + 1] == "0.0.0.0"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cerebrum" in scripts


def test_every_variable_a_stage_uses_is_declared_in_it() -> None:
    for stage in stages():
        declared = set(INHERITED)
        for instruction in stage:
            if instruction["instruction"] == "ARG":
                declared.add(instruction["value"].split("=")[0].strip())
            used = set(VARIABLE.findall(instruction["value"])) if instruction["instruction"] != "FROM" else set()
            assert used <= declared, (
                f"line {instruction['startline'] + 1}: {used - declared} not declared in this stage"
            )
            if instruction["instruction"] == "ENV":
                declared |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", instruction["value"]))


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200 if self.path == "/health" and self.server.healthy else 503)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    server.healthy = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("source", ["Dockerfile", "compose"])
def test_the_health_check_passes_on_health_and_fails_otherwise(health_server: ThreadingHTTPServer, source: str) -> None:
    if source == "Dockerfile":
        command = healthcheck_command()
    else:
        command = load_yaml(COMPOSE_DIR / "docker-compose.yml")["services"]["users"]["healthcheck"]["test"][1:]
    assert command[0] == "python"
    env = {"PORT": str(health_server.server_address[1])}
    assert subprocess.run([sys.executable, *command[1:]], env=env, timeout=10).returncode == 0
    health_server.healthy = False  # type: ignore[attr-defined]
    assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=10).returncode != 0


def test_the_build_context_holds_the_sources_and_nothing_private() -> None:
    builder = stages()[0]
    sources = [i["value"].split()[0] for i in builder if i["instruction"] == "COPY" and "--from" not in i["value"]]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not excluded(source), f"COPY {source} is excluded by .dockerignore"
    for kept in (
        "cerebrum/cli.py",
        "services/users/app.py",
        "services/users/migrations/env.py",
        "observability/metrics.py",
    ):
        assert not excluded(kept), kept
    for private in (".git/config", ".venv/bin/python", "data/keys/jwt-ed25519.pem", "compose/.env", ".env"):
        assert excluded(private), private
    assert excluded("services/users/__pycache__/app.cpython-311.pyc")
    assert excluded("tests/conftest.py")


def cerebrum_commands() -> list[tuple[str, list[str]]]:
    """Every command line the image is started with: Dockerfile, compose files and Kubernetes."""
    found = [("Dockerfile CMD", exec_form(only(stages()[-1], "CMD")["value"]))]
    for filename in ("docker-compose.yml", "strangler.yml"):
        for name, service in load_yaml(COMPOSE_DIR / filename)["services"].items():
            if service.get("image") == "cerebrum:local" and "command" in service:
                found.append((f"{filename}:{name}", service["command"]))
    for overlay, path in OVERLAYS.items():
        manifests = kustomize.build(path)
        for kind in ("Deployment", "Job"):
            for name, workload in by_kind(manifests, kind).items():
                (main,) = workload["spec"]["template"]["spec"]["containers"]
                if "cerebrum" in main["image"]:  # not the exporters' images
                    found.append((f"{overlay}:{kind}/{name}", main["args"]))
    return found


@pytest.fixture(scope="module")
def cli() -> Any:
    """The `cerebrum` command as click sees it, loaded from cerebrum/cli.py with a stand-in runner.

    Parsing needs only the commands' signatures; the real runner would build every service on import.
    """
    spec = importlib.util.spec_from_file_location("cerebrum_cli_signatures", REPO / "cerebrum" / "cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "cerebrum.runner", types.ModuleType("cerebrum.runner"))
        spec.loader.exec_module(module)
    return typer.main.get_command(module.app)


@pytest.mark.parametrize(("where", "argv"), cerebrum_commands(), ids=lambda value: str(value))
def test_the_cli_accepts_every_command_the_image_is_given(cli: Any, where: str, argv: list[str]) -> None:
    command = cli
    words = list(argv)
    while words and words[0] in getattr(command, "commands", {}):
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"{where}: {argv} names no command"
    command.make_context(command.name, words)  # raises on an unknown option or a missing argument


def test_the_cli_check_refuses_a_misspelt_option(cli: Any) -> None:
    with pytest.raises(Exception, match="--hots"):
        cli.commands["serve"].make_context("serve", ["gateway", "--hots", "0.0.0.0"])


def test_dockerignore_patterns_are_understood() -> None:
    assert Path(REPO / ".dockerignore").read_text().splitlines()[0].startswith("#")
    assert dockerignore()[0] == "*", "an allow-list: everything is out unless named"
