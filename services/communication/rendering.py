"""Templates in Jinja2's sandbox: strict about missing variables, unable to reach Python internals.

Jinja2 over Handlebars (pybars3): it is maintained, ships a sandbox for templates that admins
edit, and its ``StrictUndefined`` turns a missing variable into an error instead of a blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.communication.schemas import MAX_BODY
from services.kit.errors import InvalidInput


def rupees(paise: Any) -> str:
    """Formats an amount in paise as rupees: 1999900 → ₹19,999.00."""
    amount = int(paise)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 100)
    return f"{sign}₹{whole:,}.{fraction:02d}"


_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.filters["rupees"] = rupees


@lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def variables_of(*sources: str | None) -> list[str]:
    """The variables a template's subject and body use, sorted; a syntax error is a 422."""
    found: set[str] = set()
    for source in sources:
        if source is None:
            continue
        try:
            found |= meta.find_undeclared_variables(_ENV.parse(source))
        except TemplateSyntaxError as exc:
            raise InvalidInput(
                f"The template does not parse: {exc.message} (line {exc.lineno})",
                errors=[{"field": "body", "message": str(exc.message)}],
            ) from exc
    return sorted(found)


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


def render(
    *, subject: str | None, body: str, declared: list[str], variables: Mapping[str, Any], channel: str
) -> Rendered:
    """Renders a template; every missing variable is named in a 422, never rendered as a blank."""
    missing = [name for name in declared if name not in variables]
    if missing:
        raise InvalidInput(
            f"Missing template variable(s): {', '.join(missing)}",
            missing=missing,
            errors=[{"field": f"variables.{name}", "message": "missing"} for name in missing],
        )
    try:
        rendered_subject = _compile(subject).render(variables).strip() if subject is not None else None
        rendered_body = _compile(body).render(variables).strip()
    except TemplateError as exc:  # a missing attribute deeper down, or the sandbox refusing
        raise InvalidInput(
            f"The template could not be rendered: {exc}"[:300], errors=[{"field": "variables", "message": "invalid"}]
        ) from exc
    except (TypeError, ValueError) as exc:  # a filter given the wrong kind of value
        raise InvalidInput(
            f"A template variable has the wrong type: {exc}"[:300],
            errors=[{"field": "variables", "message": "invalid"}],
        ) from exc
    if not rendered_body:
        raise InvalidInput(
            "The template rendered an empty message", errors=[{"field": "variables", "message": "empty"}]
        )
    if len(rendered_body) > MAX_BODY[channel]:
        raise InvalidInput(
            f"The rendered {channel} message is longer than {MAX_BODY[channel]} characters",
            errors=[{"field": "variables", "message": "too long"}],
        )
    return Rendered(subject=rendered_subject[:300] if rendered_subject else None, body=rendered_body)
