from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, SecretStr

from services.kit.schemas import StrictInput

Grade = Literal["11", "12", "repeater"]
TargetExam = Literal["NEET", "CBSE", "AIIMS", "JIPMER", "other"]
PHONE_PATTERN = r"^\+?[1-9][0-9]{7,14}$"


class RegisterRequest(StrictInput):
    email: EmailStr
    password: SecretStr = Field(min_length=1, max_length=256)
    full_name: str = Field(min_length=1, max_length=120)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    grade: Grade | None = None
    target_exam: TargetExam | None = None


class LoginRequest(StrictInput):
    email: EmailStr
    password: SecretStr = Field(min_length=1, max_length=256)


class RefreshRequest(StrictInput):
    refresh_token: SecretStr = Field(min_length=1, max_length=512)


class TokenResponse(BaseModel):
    """OAuth 2.0 token response fields (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str


class ProfileFields(BaseModel):
    full_name: str | None = None
    phone: str | None = None
    grade: Grade | None = None
    target_exam: TargetExam | None = None
    city: str | None = None
    school: str | None = None


class UserResponse(BaseModel):
    id: uuid.UUID
    email: str
    role: Literal["student", "admin"]
    status: str
    created_at: datetime
    profile: ProfileFields


class ProfileUpdate(StrictInput):
    """Fields to change; those left out stay as they are, ``null`` clears a field."""

    full_name: str | None = Field(default=None, min_length=1, max_length=120)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    grade: Grade | None = None
    target_exam: TargetExam | None = None
    city: str | None = Field(default=None, max_length=80)
    school: str | None = Field(default=None, max_length=120)
