"""Settings every service shares; each service subclasses this with its own name and options.

Settings are read when an app is built (``create_app(settings)``), never at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "test", "staging", "production"]
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "dev", "test", ""}


class ServiceSettings(BaseSettings):
    """Environment-driven settings with one URL per dependency; unset URLs mean embedded stand-ins."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, frozen=True)

    service_name: str = "cerebrum"
    service_version: str = "0.1.0"
    environment: Environment = "development"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console lines on a terminal, JSON lines anywhere else"
    )
    observability: bool = Field(default=True, description="OBSERVABILITY=off serves with no telemetry")

    data_dir: Path = Path("data")
    database_url: str | None = None
    database_schema: str | None = None
    database_pool_size: int = 10
    database_pool_overflow: int | None = Field(
        default=None,
        ge=0,
        description="connections opened beyond the pool at a peak, closed when given back (default: the pool's size)",
    )
    database_pool_timeout: float = 10.0
    redis_url: str | None = None
    redis_key_prefix: str = "cerebrum:"
    rabbitmq_url: str | None = None
    migrate_on_start: bool = True
    chaos_enabled: bool = False
    """Run-time fault injection (latency, errors) on chosen routes; off unless CHAOS_ENABLED=true."""
    chaos_token: SecretStr | None = None
    relay_batch_size: int = 500
    consumer_batch_size: int = 200
    consumer_linger_ms: int = Field(
        default=0,
        ge=0,
        le=5_000,
        description="How long an open batch of events waits for more (0: handled as soon as the queue is quiet)",
    )
    consumer_max_retries: int = 5
    consumer_retry_base_ms: int = 500
    job_stop_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long shutdown waits for a background job to end"
    )

    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or ranges (10.0.0.0/8) whose X-Forwarded-For is believed: the gateway, a load balancer",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="Largest request body a route accepts")

    jwt_private_key: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "cerebrum-users"
    jwt_audience: str = "cerebrum"
    access_token_ttl_seconds: int = 900

    @field_validator("observability", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("off", "false", "0", "no"):
            return False
        if isinstance(value, str) and value.strip().lower() in ("on", "true", "1", "yes"):
            return True
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, value: object) -> object:
        # TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8 as uvicorn's FORWARDED_ALLOW_IPS, or a JSON list.
        if isinstance(value, str):
            text = value.strip()
            return (
                json.loads(text) if text.startswith("[") else [part.strip() for part in text.split(",") if part.strip()]
            )
        return value

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        if self.jwt_public_key is None or not self.jwt_public_key.strip():
            raise ValueError("JWT_PUBLIC_KEY must be set outside development")
        key = self.jwt_private_key.get_secret_value() if self.jwt_private_key else None
        if key is not None and key.strip().lower() in _PLACEHOLDERS:
            raise ValueError("JWT_PRIVATE_KEY is a placeholder; set a real key outside development")
        if self.database_url is None:
            raise ValueError("DATABASE_URL must be set outside development")
        return self

    @property
    def db_schema(self) -> str:
        """The database schema this service owns (PostgreSQL); SQLite uses one file per service."""
        return self.database_schema or self.service_name

    @property
    def embedded(self) -> bool:
        return self.database_url is None
