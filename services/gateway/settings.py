from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.settings import ServiceSettings

# The services' own addresses in distributed mode (cerebrum up --distributed uses these ports).
DEFAULT_UPSTREAMS = {
    "users": "http://127.0.0.1:8101",
    "courses": "http://127.0.0.1:8102",
    "enrollments": "http://127.0.0.1:8103",
    "payments": "http://127.0.0.1:8104",
    "analytics": "http://127.0.0.1:8105",
    "communication": "http://127.0.0.1:8106",
    "assessments": "http://127.0.0.1:8107",
}


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    upstreams: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_UPSTREAMS))
    monolith_url: str | None = None
    """The embedded all-in-one platform, the other side of the strangler-fig split."""
    strip_prefix: str = "/api"
    timeout_seconds: float = 10.0
    rate_limits: str = "1000/minute;10000/hour"
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000"])
    weights_refresh_seconds: float = 2.0
    breaker_threshold: int = 5
    breaker_ttl_seconds: float = 10.0
    body_limits: dict[str, int] = Field(
        default_factory=lambda: {
            "/analytics/events": 1000 * (4096 + 1024),
            "/courses/{course_id}/lessons/{lesson_id}/files": 50 * 1024 * 1024,
        }
    )
    """Routes (after the prefix) whose bodies may pass ``max_body_bytes``: as large as their service accepts."""
    shadow_rules_file: Path | None = None
    """Per-route comparison rules for shadow traffic (slo/gates/shadow.yaml); none: the defaults."""
    shadow_queue_size: int = 1000
    shadow_workers: int = 4
    shadow_timeout_seconds: float = 2.0
    shadow_learn_first: int = 10
    """Mirrors per route that also ask the primary side again, to learn the route's noise first."""
    shadow_learn_share: float = 0.1
