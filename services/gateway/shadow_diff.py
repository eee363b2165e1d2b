"""Two answers to one request, compared field by field as JSON, with the fields known to be noise left out.

A field is named by where it sits: ``status``, ``header.content-type``, ``body.items[*].price``
(list positions fold to ``[*]``, so what is learned about one element holds for all). Noise is
learned as Twitter's Diffy learns it: the primary side answers the same request twice, and every
field that differs between those two answers (an id minted per call, a timestamp, the order of a
set) says nothing about the candidate and is left out of its comparison on that route.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

FieldClass = Literal["status", "header", "body"]
FIELD_CLASSES: tuple[FieldClass, ...] = ("status", "header", "body")
DEFAULT_HEADERS = ("content-type", "location", "cache-control")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


@dataclass(frozen=True)
class RouteRules:
    """How one route's answers are compared (from slo/gates/shadow.yaml)."""

    ignore: tuple[str, ...] = ()
    """Field patterns (fnmatch: ``body.*_at``) never compared."""
    headers: tuple[str, ...] = DEFAULT_HEADERS
    """The headers that matter; the rest (date, server, request ids) are not compared."""
    relative_tolerance: float = 0.0
    absolute_tolerance: float = 0.0
    read_only: bool = False
    """Declared free of side effects, so mirrored whatever its method."""

    @classmethod
    def of(cls, raw: Mapping[str, Any], base: RouteRules | None = None) -> RouteRules:
        base = base or cls()
        return cls(
            ignore=(*base.ignore, *(str(p) for p in raw.get("ignore", ()))),
            headers=tuple(str(h).lower() for h in raw.get("headers", base.headers)),
            relative_tolerance=float(raw.get("relative_tolerance", base.relative_tolerance)),
            absolute_tolerance=float(raw.get("absolute_tolerance", base.absolute_tolerance)),
            read_only=bool(raw.get("read_only", base.read_only)),
        )


@dataclass(frozen=True)
class ShadowRules:
    """Rules per route (``GET /courses/{id}``) or per prefix (``courses``), over the defaults."""

    defaults: RouteRules = RouteRules()
    routes: Mapping[str, RouteRules] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> ShadowRules:
        raw = raw or {}
        defaults = RouteRules.of(raw.get("defaults") or {})
        routes = {str(key): RouteRules.of(value or {}, defaults) for key, value in (raw.get("routes") or {}).items()}
        return cls(defaults, routes)

    def for_route(self, prefix: str, route: str) -> RouteRules:
        return self.routes.get(route) or self.routes.get(prefix) or self.defaults


@dataclass(frozen=True)
class Difference:
    field: str
    """Where, with list positions folded: ``body.items[*].price``."""
    primary: Any
    candidate: Any

    @property
    def field_class(self) -> FieldClass:
        return "status" if self.field == "status" else "header" if self.field.startswith("header.") else "body"


@dataclass
class Noise:
    """What one route's primary side is known to answer differently to the same request."""

    fields: set[str] = field(default_factory=set)
    unordered: set[str] = field(default_factory=set)
    """Lists whose order is not part of the answer (sets served in no fixed order)."""
    pairs: int = 0

    def covers(self, name: str) -> bool:
        return any(name == f or name.startswith((f + ".", f + "[")) for f in self.fields)

    def learn(self, first: Answer, second: Answer, rules: RouteRules) -> set[str]:
        """Learns from two answers of the same side; returns the fields newly found to be noise."""
        self.pairs += 1
        walker = _Walker(rules, self, learning=True)
        found = {d.field for d in walker.compare(first, second)} - self.fields
        self.fields |= found
        return found


def compare(primary: Answer, candidate: Answer, rules: RouteRules, noise: Noise | None = None) -> list[Difference]:
    """The differences that matter between two answers: neither ignored by the rules nor learned noise."""
    noise = noise or Noise()
    found: dict[str, Difference] = {}  # one per field: the first element of a list that differs
    for difference in _Walker(rules, noise, learning=False).compare(primary, candidate):
        if difference.field not in found and not noise.covers(difference.field):
            found[difference.field] = difference
    return list(found.values())


_MISSING = object()


def _loads(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _MISSING


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class _Walker:
    def __init__(self, rules: RouteRules, noise: Noise, *, learning: bool) -> None:
        self.rules, self.noise, self.learning = rules, noise, learning

    def compare(self, a: Answer, b: Answer) -> Iterator[Difference]:
        if a.status != b.status and not self._ignored("status"):
            yield Difference("status", a.status, b.status)
        for name in self.rules.headers:
            left, right = a.header(name), b.header(name)
            if left != right and not self._ignored(f"header.{name}"):
                yield Difference(f"header.{name}", left, right)
        left, right = _loads(a.body), _loads(b.body)
        if left is _MISSING or right is _MISSING:
            # Not JSON on at least one side: the bytes are the field.
            if a.body != b.body and not self._ignored("body"):
                yield Difference("body", a.body[:200].decode(errors="replace"), b.body[:200].decode(errors="replace"))
            return
        yield from self._values("body", left, right)

    def _ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.rules.ignore)

    def _values(self, name: str, left: Any, right: Any) -> Iterator[Difference]:
        if self._ignored(name):
            return
        if isinstance(left, dict) and isinstance(right, dict):
            for key in sorted(left.keys() | right.keys()):
                yield from self._values(f"{name}.{key}", left.get(key, _ABSENT), right.get(key, _ABSENT))
        elif isinstance(left, list) and isinstance(right, list):
            yield from self._lists(name, left, right)
        elif not self._equal(left, right):
            yield Difference(name, _shown(left), _shown(right))

    def _lists(self, name: str, left: list[Any], right: list[Any]) -> Iterator[Difference]:
        if name in self.noise.unordered:
            left, right = sorted(left, key=_canonical), sorted(right, key=_canonical)
        elif self.learning and len(left) == len(right) and left != right:
            if sorted(map(_canonical, left)) == sorted(map(_canonical, right)):
                self.noise.unordered.add(name)
                return
        if len(left) != len(right):
            yield Difference(f"{name}[#]", len(left), len(right))
        for a, b in zip(left, right, strict=False):
            yield from self._values(f"{name}[*]", a, b)

    def _equal(self, left: Any, right: Any) -> bool:
        if left == right and type(left) is type(right):
            return True
        numbers = (int, float)
        if (
            isinstance(left, numbers)
            and isinstance(right, numbers)
            and not isinstance(left, bool)
            and not isinstance(right, bool)
        ):
            allowed = max(self.rules.absolute_tolerance, self.rules.relative_tolerance * max(abs(left), abs(right)))
            return abs(left - right) <= allowed
        return False


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _shown(value: Any) -> Any:
    return "<absent>" if value is _ABSENT else value


_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F-]{32,36}|[0-9a-fA-F]{16,}|[A-Za-z0-9_-]{20,})$")


def route_of(method: str, path: str) -> str:
    """The route an answer belongs to: ``GET /courses/{id}`` for ``GET /courses/5b0c…``."""
    segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in path.split("?", 1)[0].split("/")]
    return f"{method} {'/'.join(segments)}"
