"""Gate files (``slo/gates/phase-N.yaml``) and what a gate run is given and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slo.evaluate import Evaluation
from slo.scoring import Thresholds, Verdict
from slo.spec import ServiceSpec, SpecError, display_path

GATES_DIR = Path(__file__).parent / "gates"
Check = Literal[
    "slo",
    "load_users",
    "ready",
    "rules",
    "dashboards",
    "reconciliation",
    "junit",
    "events",
    "chaos",
    "canary_latency",
    "canary_errors",
    "canary_budget",
    "shadow_diffs",
    "alerts",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    name: str = Field(min_length=1)
    check: Check
    description: str = ""
    key: bool = False
    optional: bool = False
    """Left out (SKIPPED) when its input is not given, even when key; otherwise a key one is INCONCLUSIVE."""
    weight: float = Field(default=1.0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)


class ScoreThresholds(_Strict):
    passing: float = Field(default=90, alias="pass", ge=0, le=100)
    warning: float = Field(default=75, ge=0, le=100)


class ExitCodes(_Strict):
    warn: int = Field(default=2, ge=0, le=255)
    inconclusive: int = Field(default=2, ge=0, le=255)


class GateFile(_Strict):
    phase: int = Field(ge=1, le=6)
    name: str
    description: str = ""
    total: ScoreThresholds = ScoreThresholds()
    exit_codes: ExitCodes = ExitCodes()
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    criteria: list[Criterion] = Field(min_length=1)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(passing=self.total.passing, warning=self.total.warning)


def load_gate(phase: int, path: Path | None = None) -> GateFile:
    """Reads ``slo/gates/phase-<N>.yaml`` (or the given file); errors name the file and the field."""
    path = path or GATES_DIR / f"phase-{phase}.yaml"
    source = display_path(path)
    try:
        data = yaml.safe_load(path.read_text())
        gate = GateFile.model_validate(data)
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            lines.append(f"{source}: {where}: {str(error['msg']).removeprefix('Value error, ')}")
        raise SpecError("\n".join(lines)) from None
    if gate.phase != phase:
        raise SpecError(f"{source}: phase: is {gate.phase}, but phase {phase} was asked for")
    return gate


class MissingInput(Exception):
    """A check was not given what it reads (a file, a URL): INCONCLUSIVE when key, else SKIPPED."""


@dataclass
class GateInputs:
    specs: dict[str, ServiceSpec]
    repo_root: Path = Path(".")
    services: list[str] = field(default_factory=list)
    stats: Path | None = None
    prometheus_url: str | None = None
    window: str = "1h"
    url: str | None = None
    reconciliation: Path | None = None
    junit: list[Path] = field(default_factory=list)
    chaos: list[Path] = field(default_factory=list)
    target_users: int | None = None
    prefix: str | None = None
    path: str | None = None
    requests: int = 200
    students: int = 60
    admin_token: str | None = None
    promote: bool = False
    transport: httpx.BaseTransport | None = None
    """Tests hand in a transport; otherwise requests go over the network."""
    cache: dict[str, Any] = field(default_factory=dict)

    def http(self) -> httpx.Client:
        if self.url is None:
            raise MissingInput("no --url given")
        return httpx.Client(base_url=self.url, timeout=30, transport=self.transport)


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    target: str
    measured: str
    detail: str = ""
    evaluation: Evaluation | None = None


@dataclass(frozen=True)
class CriterionResult:
    name: str
    check: Check
    verdict: Verdict
    key: bool
    weight: float
    target: str
    measured: str
    detail: str
    evaluation: Evaluation | None = None


@dataclass(frozen=True)
class Promotion:
    prefix: str
    before: int
    after: int
    action: str
    """promoted, rolled back, held or finished."""


@dataclass(frozen=True)
class GateResult:
    phase: int
    name: str
    verdict: Verdict
    score: float | None
    reason: str
    criteria: list[CriterionResult]
    exit_codes: ExitCodes
    promotion: Promotion | None = None
