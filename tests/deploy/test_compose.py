"""compose/: the file is valid Compose, everything it mounts exists, and every address in it resolves."""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy.composefile import (
    COMPOSE_FILES,
    VARIABLE,
    bind_mounts,
    compose_spec,
    environment,
    hosts_in,
    interpolate,
)
from tests.deploy.conftest import COMPOSE_DIR, PORTS, REPO, SERVICES, load_yaml

# Written by other parts of the project; mounted as they will be, checked once they exist.


def test_the_schema_is_the_vendored_compose_spec() -> None:
    # check-jsonschema (0.39.0 when this was written) vendors SchemaStore's copy of compose-spec.json.
    schema = compose_spec()
    assert schema["title"] == "Compose Specification"
    assert importlib.metadata.version("check-jsonschema")


@pytest.mark.parametrize("filename", COMPOSE_FILES)
def test_the_file_follows_the_compose_specification(filename: str) -> None:
    document = interpolate(load_yaml(COMPOSE_DIR / filename))
    schema = compose_spec()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_the_validation_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = interpolate(compose)
    broken["services"]["users"]["depends_on"] = "migrate"
    broken["services"]["gateway"]["restart"] = ["always"]
    schema = compose_spec()
    assert len(list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))) >= 2


# Absolute sources are the Docker host's own paths (its container log folder), not repository files.
_REPOSITORY_MOUNTS = [
    mount
    for mount in bind_mounts(load_yaml(COMPOSE_DIR / "docker-compose.yml"))
    + bind_mounts(load_yaml(COMPOSE_DIR / "strangler.yml"))
    if not mount[1].startswith(("/", "~"))
]


@pytest.mark.parametrize(("service", "source", "target"), _REPOSITORY_MOUNTS)
def test_every_mounted_file_exists_in_the_repository(service: str, source: str, target: str) -> None:
    path = (COMPOSE_DIR / source).resolve()
    assert path.is_relative_to(REPO), f"{service} mounts {source}, outside the repository"
    assert path.exists(), f"{service} mounts {source}, which does not exist"


def test_named_volumes_and_build_contexts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = interpolate(volume).split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses the undeclared volume {source}"
        if "build" in service:
            context = (COMPOSE_DIR / service["build"]["context"]).resolve()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()


def test_every_dependency_is_a_service_of_the_file(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on", {})
        targets = set(depends_on) if isinstance(depends_on, dict) else set(depends_on)
        assert targets <= services, f"{name} depends on {targets - services}"
        assert name not in targets


def test_every_address_in_the_environment_is_a_service_of_the_file(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    for filename in COMPOSE_FILES:
        document = load_yaml(COMPOSE_DIR / filename)
        known = services | set(document["services"])
        for name, service in document["services"].items():
            texts = list(environment(service).items()) + [("command", " ".join(service.get("command", [])))]
            for key, text in texts:
                hosts = hosts_in(text)
                if key.endswith(("_URI", "_ADDR")) and not hosts:  # host:port/db, as postgres-exporter takes it
                    hosts = {text.split(":")[0]}
                assert hosts <= known, f"{filename}: {name}'s {key} points at {hosts - known}"


def test_the_services_reach_the_infrastructure_by_its_service_names(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["users"])
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    assert urlsplit(env["RABBITMQ_URL"]).hostname == "rabbitmq"
    assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname == "otel-collector"
    assert compose["services"]["postgres"]["image"].startswith("postgres:15")
    assert compose["services"]["redis"]["image"].startswith("redis:7")
    assert (
        compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:3")
        and "management" in (compose["services"]["rabbitmq"]["image"])
    )
    plugins = (COMPOSE_DIR / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins


@pytest.mark.parametrize("name", list(PORTS))
def test_each_cerebrum_process_runs_from_the_repository_image(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    command = service["command"]
    assert command[:2] == ["serve", name]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    # The migrate job migrated every schema, the gateway's too: no replica migrates at start.
    assert "--no-migrate" in command
    assert service["build"]["context"] == ".." and service["image"] == "cerebrum:local"
    env = environment(service)
    assert env["PORT"] == str(PORTS[name]) and env["OTEL_SERVICE_NAME"] == name
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_migrate_job_upgrades_every_schema(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert environment(migrate)["DATABASE_URL"] == environment(compose["services"]["users"])["DATABASE_URL"]


def test_the_gateway_knows_every_service_and_enrollments_its_saga_peers(compose: dict[str, Any]) -> None:
    upstreams = json.loads(environment(compose["services"]["gateway"])["UPSTREAMS"])
    assert upstreams == {name: f"http://{name}:{PORTS[name]}" for name in SERVICES}
    env = environment(compose["services"]["enrollments"])
    assert {env["USERS_URL"], env["COURSES_URL"], env["PAYMENTS_URL"]} == {
        f"http://{name}:{PORTS[name]}" for name in ("users", "courses", "payments")
    }
    assert set(compose["services"]["gateway"]["depends_on"]) >= set(SERVICES)


def test_the_private_key_reaches_only_the_services_that_sign(compose: dict[str, Any]) -> None:
    signing = {name for name, service in compose["services"].items() if "JWT_PRIVATE_KEY" in environment(service)}
    assert signing == {"users", "enrollments"}
    assert all("JWT_PUBLIC_KEY" in environment(compose["services"][name]) for name in PORTS)


def test_secrets_come_from_the_env_file_and_it_holds_only_placeholders(compose: dict[str, Any]) -> None:
    text = "\n".join((COMPOSE_DIR / name).read_text() for name in COMPOSE_FILES)
    used = {match.group(1) for match in VARIABLE.finditer(text)}
    example = {}
    for line in (COMPOSE_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert used <= set(example), f"not documented in .env.example: {used - set(example)}"
    assert "-----BEGIN" not in "".join(example.values())
    for key in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert example[key].startswith("replace-me"), key
    assert example["JWT_PRIVATE_KEY"] == example["JWT_PUBLIC_KEY"] == ""
    assert ".env" in (COMPOSE_DIR / ".gitignore").read_text().split()


def test_nothing_is_published_beyond_this_machine(compose: dict[str, Any]) -> None:
    for name, service in interpolate(compose)["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    published = {name for name in PORTS if compose["services"][name].get("ports")}
    assert published == {"gateway"}


def test_locust_loads_the_gateway(compose: dict[str, Any]) -> None:
    locust = compose["services"]["locust"]
    assert locust["image"].startswith("locustio/locust")
    assert locust["command"][locust["command"].index("--host") + 1] == "http://gateway:8000"
    assert "/api/courses" in (COMPOSE_DIR / "locustfile.py").read_text()


def test_the_strangler_override_points_the_gateway_at_the_monolith(compose: dict[str, Any]) -> None:
    override = load_yaml(COMPOSE_DIR / "strangler.yml")
    assert override["services"]["gateway"]["environment"]["MONOLITH_URL"] == "http://monolith:8000"
    monolith = override["services"]["monolith"]
    assert monolith["command"][0] == "up" and "RABBITMQ_URL" not in environment(monolith)
    assert set(monolith["depends_on"]) <= set(compose["services"])


def test_yaml_anchors_resolve_to_the_shared_settings(compose: dict[str, Any]) -> None:
    raw = (COMPOSE_DIR / "docker-compose.yml").read_text()
    assert yaml.safe_load(raw) == compose
    shared = {
        key for key in environment(compose["services"]["users"]) if key in environment(compose["services"]["migrate"])
    }
    assert {"DATABASE_URL", "REDIS_URL", "RABBITMQ_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "ENVIRONMENT"} <= shared
