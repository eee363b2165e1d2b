from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.kit.settings import ServiceSettings


def test_embedded_defaults_need_no_environment() -> None:
    settings = ServiceSettings(service_name="users")
    assert settings.embedded and settings.db_schema == "users" and settings.observability


def test_observability_off_switch_reads_words() -> None:
    assert ServiceSettings(observability="off").observability is False  # type: ignore[arg-type]


def test_production_refuses_missing_keys_and_placeholders() -> None:
    with pytest.raises(ValidationError, match="JWT_PUBLIC_KEY"):
        ServiceSettings(environment="production", database_url="postgresql://db/x")
    with pytest.raises(ValidationError, match="placeholder"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://db/x",
            jwt_public_key="-----BEGIN PUBLIC KEY-----",
            jwt_private_key="changeme",
        )  # type: ignore[arg-type]
