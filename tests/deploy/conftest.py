"""What the deployment files must agree with: the services' ports and the migration plan's replica bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import kustomize

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
K8S_DIR = REPO / "deploy" / "k8s"

# `cerebrum serve <name>` listens here (cerebrum/registry.py, services/gateway).
PORTS = {
    "users": 8101,
    "courses": 8102,
    "enrollments": 8103,
    "payments": 8104,
    "analytics": 8105,
    "communication": 8106,
    "assessments": 8107,
    "gateway": 8000,
}
SERVICES = [name for name in PORTS if name != "gateway"]

# The migration plan's "Horizontal: a-b replicas" per service; the gateway stands in for the plan's Kong.
PLAN_REPLICAS = {
    "users": (3, 5),
    "courses": (2, 4),
    "enrollments": (3, 6),
    "payments": (2, 3),
    "analytics": (2, 4),
    "communication": (2, 3),
    "assessments": (3, 5),
    "gateway": (2, 6),
}

# The enrolment saga's synchronous calls: enrollments -> users, courses, payments.
SAGA_CALLS = {"enrollments": {"users", "courses", "payments"}}

OVERLAYS = {"base": K8S_DIR / "base", "production": K8S_DIR / "overlays" / "production"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_DIR / "docker-compose.yml")


@pytest.fixture(scope="session")
def builds() -> dict[str, list[kustomize.Manifest]]:
    return {name: kustomize.build(path) for name, path in OVERLAYS.items()}


def by_kind(manifests: list[kustomize.Manifest], kind: str) -> dict[str, kustomize.Manifest]:
    return {manifest["metadata"]["name"]: manifest for manifest in manifests if manifest["kind"] == kind}


# Run beside the platform for the alert rules (deploy/k8s/base/postgres-exporter.yaml), from their own images.
EXPORTERS = {"postgres-exporter": 9187}


def processes(manifests: list[kustomize.Manifest]) -> dict[str, kustomize.Manifest]:
    """The Deployments of Cerebrum's own processes (the services and the gateway), without the exporters."""
    return {name: d for name, d in by_kind(manifests, "Deployment").items() if name not in EXPORTERS}
