from __future__ import annotations

from services.kit.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    """The users service: accounts, sessions, tokens and profiles."""

    service_name: str = "users"
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # argon2id, RFC 9106's second recommended option; tests lower it through settings.
    password_time_cost: int = 3
    password_memory_kib: int = 64 * 1024
    password_parallelism: int = 1
    login_limit_per_client: str = "60/minute"
    login_limit_per_account: str = "5/minute;20/hour"
    register_limit_per_client: str = "10/minute;100/hour"
