"""Reading compose files the way Compose does: interpolation, bind mounts, environments, the schema."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from typing import Any

COMPOSE_FILES = ["docker-compose.yml", "strangler.yml"]
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s\"']*@)?([A-Za-z0-9_.-]+)")
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def interpolate(node: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default} with the given environment (none: defaults)."""
    env = env or {}
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return VARIABLE.sub(lambda match: env.get(match.group(1)) or match.group(3) or "", node)
    return node


@functools.cache
def compose_spec() -> dict[str, Any]:
    """The compose-spec JSON schema as vendored (from SchemaStore) by the check-jsonschema package."""
    schema = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(schema.read_text())


def bind_mounts(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, source, target) of every bind mount, sources as written (relative to compose/)."""
    mounts = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = interpolate(volume).split(":")[:2]
            if source.startswith((".", "/", "~")):
                mounts.append((name, source, target))
    return mounts


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in interpolate(env).items()}


def hosts_in(text: str) -> set[str]:
    return {match.group(1) for match in URL.finditer(text)}
