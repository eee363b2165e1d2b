"""SLO specs: one YAML file per service, validated, with errors that name the file and the field.

A spec holds the migration plan's targets for one service (availability, p95 latency, error rate,
throughput) over a rolling window. The burn-rate rules, the evaluator and the gates all read
their thresholds from here, so an alert and a verdict can never disagree about a target.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slo.durations import parse_duration

SPECS_DIR = Path(__file__).parent / "specs"
SLI_KINDS = ("availability", "latency", "error_rate", "throughput")
# The longest window the burn-rate alerts look at: an SLO window must be longer than this.
LONGEST_ALERT_WINDOW = 3 * 86400


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteScope(_Strict):
    """The routes an objective counts: only some of them, or all but some.

    Routes are written as the services label them (the route template: ``/auth/login``,
    ``/courses/{course_id}``). A service whose routes differ by design (a login that hashes a
    password for ~300 ms on purpose) gives them an objective of their own and leaves them out of
    the others, instead of letting them burn a 100 ms budget with every sign-in. Such a side
    objective (not ``key``) is skipped, not inconclusive, while its routes see too few requests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    only: tuple[str, ...] = ()
    excluding: tuple[str, ...] = Field(default=(), alias="except")

    @field_validator("only", "excluding")
    @classmethod
    def _templates(cls, routes: tuple[str, ...]) -> tuple[str, ...]:
        for route in routes:
            if not route.startswith("/") or any(c in route for c in '"\\|'):
                raise ValueError(f"{route!r} is not a route template (like /auth/login)")
        return routes

    @model_validator(mode="after")
    def _one_of(self) -> RouteScope:
        if bool(self.only) == bool(self.excluding):
            raise ValueError("routes: give either only or except, with at least one route")
        return self

    def counts(self, route: str) -> bool:
        """Whether a request to ``route`` (a template, or a concrete path) counts for the objective."""
        listed = any(_same_route(template, route) for template in self.only or self.excluding)
        return listed if self.only else not listed

    @property
    def example(self) -> str:
        """A route the objective counts (for synthetic series)."""
        return self.only[0] if self.only else "/synthetic"


def _same_route(template: str, route: str) -> bool:
    """``/courses/{course_id}`` matches itself, ``/courses/[id]`` (Locust's names) and ``/courses/42``."""
    left, right = template.strip("/").split("/"), route.strip("/").split("/")
    return len(left) == len(right) and all(
        a == b or a.startswith("{") or b.startswith(("{", "[")) for a, b in zip(left, right, strict=True)
    )


class _Objective(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    routes: RouteScope | None = None
    minimum_requests: int = Field(default=100, ge=1)
    key: bool = False
    weight: float = Field(default=1.0, ge=0)

    @property
    def budgeted(self) -> bool:
        """Whether the objective has an error budget (and so burn-rate alerts)."""
        return False


class _RatioObjective(_Objective):
    """Good events over all events, at least ``target``; the error budget is ``1 - target``."""

    target: float
    warning: float

    @field_validator("target", "warning")
    @classmethod
    def _a_ratio(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _warning_is_looser(self) -> _RatioObjective:
        if self.warning > self.target:
            raise ValueError("warning: must not be above target (the warning bound is the looser one)")
        return self

    @property
    def budgeted(self) -> bool:
        return True

    @property
    def error_budget(self) -> float:
        return 1 - self.target


class AvailabilityObjective(_RatioObjective):
    sli: Literal["availability"]


class LatencyObjective(_RatioObjective):
    """``target`` of the requests answer within ``threshold``: target 0.95 and 100ms is "p95 < 100ms"."""

    sli: Literal["latency"]
    threshold: float = Field(description="seconds; written like 100ms or 1s")

    @field_validator("threshold", mode="before")
    @classmethod
    def _a_duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be a positive duration")
        return seconds


class ErrorRateObjective(_Objective):
    """Server errors over all requests, at most ``target`` (a ceiling, judged on the measured window)."""

    sli: Literal["error_rate"]
    target: float
    warning: float

    @field_validator("target", "warning")
    @classmethod
    def _a_ratio(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError("must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _warning_is_looser(self) -> ErrorRateObjective:
        if self.warning < self.target:
            raise ValueError("warning: must not be below target (the warning bound is the looser one)")
        return self


class ThroughputObjective(_Objective):
    """Requests per second the service sustains; judged only in capacity runs (phase 5)."""

    sli: Literal["throughput"]
    target: float = Field(gt=0)
    warning: float = Field(gt=0)

    @model_validator(mode="after")
    def _warning_is_looser(self) -> ThroughputObjective:
        if self.warning > self.target:
            raise ValueError("warning: must not be above target (the warning bound is the looser one)")
        return self


Objective = Annotated[
    AvailabilityObjective | LatencyObjective | ErrorRateObjective | ThroughputObjective,
    Field(discriminator="sli"),
]


class ServiceSpec(_Strict):
    api_version: Literal["cerebrum.academy/slo/v1"] = Field(alias="apiVersion")
    kind: Literal["ServiceLevelObjectives"]
    service: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    display_name: str
    window: float = Field(description="the rolling SLO window in seconds; written like 30d")
    prefixes: tuple[str, ...] = Field(min_length=1, description="the gateway's path prefixes this service owns")
    objectives: tuple[Objective, ...] = Field(min_length=1)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= LONGEST_ALERT_WINDOW:
            raise ValueError("must be longer than the longest alerting window (3d)")
        return seconds

    @model_validator(mode="after")
    def _names_unique(self) -> ServiceSpec:
        names = [objective.name for objective in self.objectives]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"objectives: names must be unique ({', '.join(duplicates)} repeated)")
        return self

    def objective(
        self, name: str
    ) -> AvailabilityObjective | LatencyObjective | ErrorRateObjective | ThroughputObjective:
        for objective in self.objectives:
            if objective.name == name:
                return objective
        raise KeyError(name)

    @property
    def budgeted(self) -> list[AvailabilityObjective | LatencyObjective]:
        return [o for o in self.objectives if isinstance(o, AvailabilityObjective | LatencyObjective)]


def _field_path(loc: Iterable[int | str]) -> str:
    """``('objectives', 1, 'latency', 'target')`` → ``objectives[1].target`` (the union's tag dropped)."""
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in SLI_KINDS:
            pass
        else:
            path += f".{part}" if path else part
        previous = part
    return path


def _message(error: dict[str, Any]) -> tuple[str, str]:
    path = _field_path(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    # A model-level check names its own field first ("warning: must not be above target").
    head, sep, rest = message.partition(": ")
    if sep and head.isidentifier() and " " not in head:
        path = f"{path}.{head}" if path else head
        message = rest
    if error["type"] == "union_tag_invalid":
        message = f"must be one of {', '.join(SLI_KINDS)}"
        path = f"{path}.sli"
    return path, message


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_spec(data: Any, *, source: str) -> ServiceSpec:
    """Validates one spec's parsed YAML; the error names ``source`` and the field."""
    try:
        return ServiceSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            path, message = _message(dict(error))
            lines.append(f"{source}: {path}: {message}" if path else f"{source}: {message}")
        raise SpecError("\n".join(lines)) from None


def load_spec(path: Path) -> ServiceSpec:
    """Reads and validates one spec file; the file's name must be its service's."""
    source = display_path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    spec = parse_spec(data, source=source)
    if spec.service != path.stem:
        raise SpecError(f"{source}: service: is {spec.service!r} but the file is named {path.name}")
    return spec


def load_specs(directory: Path = SPECS_DIR, services: Iterable[str] | None = None) -> dict[str, ServiceSpec]:
    """Loads every ``*.yaml`` spec in a folder (or only the named services), sorted by service."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise SpecError(f"{display_path(directory)}: no SLO specs (*.yaml) here")
    specs = {spec.service: spec for spec in map(load_spec, files)}
    wanted = list(services or [])
    unknown = [name for name in wanted if name not in specs]
    if unknown:
        raise SpecError(f"no SLO spec for {', '.join(unknown)}; known: {', '.join(specs)}")
    owners: dict[str, str] = {}
    for spec in specs.values():
        for prefix in spec.prefixes:
            if prefix in owners:
                raise SpecError(
                    f"{display_path(directory / (spec.service + '.yaml'))}: prefixes: "
                    f"{prefix!r} is already owned by {owners[prefix]}"
                )
            owners[prefix] = spec.service
    return {name: specs[name] for name in wanted} if wanted else specs


def prefix_table(specs: dict[str, ServiceSpec]) -> dict[str, str]:
    """The gateway's first path segment → the service that owns it."""
    return {prefix: spec.service for spec in specs.values() for prefix in spec.prefixes}
