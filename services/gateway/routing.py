"""Which service answers which path, and which calls need no token."""

from __future__ import annotations

from dataclasses import dataclass

# Prefixes of the plan's gateway routing, each to the service that owns it.
ROUTES: dict[str, str] = {
    "auth": "users",
    "users": "users",
    "courses": "courses",
    "curriculum": "courses",
    "enrollments": "enrollments",
    "payments": "payments",
    "subscriptions": "payments",
    "billing": "payments",
    "analytics": "analytics",
    "notifications": "communication",
    "whatsapp": "communication",
    "email": "communication",
    "communication": "communication",
    "assessments": "assessments",
    "questions": "assessments",
    "leaderboard": "assessments",
}

# Calls open to anonymous visitors: signing up and in, browsing and searching courses and the
# subscription plans, and the provider webhooks (which prove themselves with a signature instead of a token).
_PUBLIC_EXACT = {
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/payments/webhooks/razorpay"),
    ("GET", "/subscriptions/plans"),
    ("HEAD", "/subscriptions/plans"),
}
_PUBLIC_READ_PREFIXES = ("/courses", "/curriculum")


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    path: str
    """The path the service sees (the gateway's prefix stripped)."""
    public: bool


def resolve(method: str, path: str, strip: str) -> Route | None:
    """Maps an incoming path to its service, or None when no service owns it."""
    if strip and path.startswith(strip + "/"):
        path = path[len(strip) :]
    elif strip:
        return None
    end = path.find("/", 1)
    prefix = path[1:end] if end > 0 else path[1:]
    service = ROUTES.get(prefix)
    if service is None:
        return None
    public = (
        (method, path) in _PUBLIC_EXACT
        or (method in ("GET", "HEAD") and path.startswith(_PUBLIC_READ_PREFIXES))
        or path.startswith("/communication/webhooks/")
    )
    return Route(prefix=prefix, service=service, path=path, public=public)
