"""Demo accounts for a newcomer: an admin and a student, with passwords made on this machine."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from pydantic import SecretStr

from services.kit.app import ServiceKit
from services.kit.deps import ClientInfo
from services.kit.errors import Conflict
from services.users import service as users
from services.users.schemas import RegisterRequest

DEMO_ADMIN = "admin@example.com"
DEMO_STUDENT = "student@example.com"
_LOCAL = ClientInfo(ip="127.0.0.1", user_agent="cerebrum-cli")


@dataclass(frozen=True)
class DemoAccounts:
    admin_email: str
    student_email: str
    credentials_file: Path
    student_login_file: Path


def _write_private(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def new_password() -> str:
    """A strong random password that passes the users service's rules."""
    return f"{secrets.token_urlsafe(12)}-{secrets.randbelow(90) + 10}"


async def create_account(users_app: FastAPI, *, email: str, password: str, full_name: str, role: str) -> None:
    """Creates an account through the users service's own rules (strength, uniqueness, audit)."""
    kit: ServiceKit = users_app.state.kit
    ctx = users_app.state.auth
    async with kit.db.session_scope() as db:
        await users.register(
            db=db,
            ctx=ctx,
            client=_LOCAL,
            role=role,
            check_limits=False,
            request=RegisterRequest(
                email=email,
                password=SecretStr(password),
                full_name=full_name,
                grade="12" if role == "student" else None,
                target_exam="NEET" if role == "student" else None,
            ),
        )


async def set_account_password(users_app: FastAPI, *, email: str, password: str, role: str) -> None:
    """Sets an existing account's password and role."""
    kit: ServiceKit = users_app.state.kit
    async with kit.db.session_scope() as db:
        await users.set_password(
            db=db,
            ctx=users_app.state.auth,
            email=email,
            password=password,
            role=role,
        )


async def ensure_demo_accounts(users_app: FastAPI, data_dir: Path) -> DemoAccounts:
    """Creates the demo admin and student once; their passwords stay in files only you can read."""
    credentials = data_dir / "demo-accounts.json"
    login_file = data_dir / "demo-student-login.json"
    if not credentials.exists():
        accounts = {
            "admin": {"email": DEMO_ADMIN, "password": new_password()},
            "student": {"email": DEMO_STUDENT, "password": new_password()},
        }
        for role, account in accounts.items():
            try:
                await create_account(
                    users_app,
                    email=account["email"],
                    password=account["password"],
                    full_name=f"Demo {role}",
                    role=role,
                )
            except Conflict:
                # Made by an earlier run whose files were removed: give it the new password.
                await set_account_password(users_app, email=account["email"], password=account["password"], role=role)
        _write_private(credentials, accounts)
        _write_private(login_file, accounts["student"])
    return DemoAccounts(DEMO_ADMIN, DEMO_STUDENT, credentials, login_file)


async def seed_academy(apps: dict[str, FastAPI]) -> tuple[int, int]:
    """Loads the demo catalogue and question bank once; returns how many courses and questions were added."""
    from services.assessments.bank import seed_demo_questions
    from services.courses.demo import seed_catalogue

    courses = questions = 0
    if "courses" in apps:
        async with apps["courses"].state.kit.db.session_scope() as db:
            courses = await seed_catalogue(db=db)
    if "assessments" in apps:
        async with apps["assessments"].state.kit.db.session_scope() as db:
            questions = await seed_demo_questions(db=db)
    return courses, questions
