from __future__ import annotations

from pydantic import Field

from services.kit.settings import ServiceSettings


class EnrollmentsSettings(ServiceSettings):
    """The enrollments service: enrolments, progress, completions and the enrolment saga."""

    service_name: str = "enrollments"
    users_url: str = "http://127.0.0.1:8101"
    courses_url: str = "http://127.0.0.1:8102"
    payments_url: str = "http://127.0.0.1:8104"
    # The plan's budget for one call to another service; idempotent calls are retried this often.
    call_timeout_seconds: float = Field(default=10.0, gt=0)
    call_retries: int = Field(default=2, ge=0)
    # Consecutive failures that open an upstream's breaker, and how long it stays open.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_ttl_seconds: float = Field(default=30.0, gt=0)
    # The recovery loop: how often it looks, how old a running saga must be to count as stuck
    # (well above a step's worst case: timeout x attempts), how many it takes per round, and how
    # many rounds a saga stuck going forward gets before it is compensated instead.
    saga_recovery_interval_seconds: float = Field(default=5.0, gt=0)
    saga_stuck_after_seconds: float = Field(default=60.0, gt=0)
    saga_recovery_batch: int = Field(default=50, ge=1)
    saga_max_attempts: int = Field(default=10, ge=1)
