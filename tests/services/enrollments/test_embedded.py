"""The enrolment saga as `cerebrum up` runs it with no servers: SQLite and the Redis stand-in."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from services.enrollments.app import create_app
from services.enrollments.models import Enrollment
from services.enrollments.settings import EnrollmentsSettings
from services.kit.auth import TokenVerifier
from tests.apps import embedded, running
from tests.services.enrollments.conftest import EnrollmentsApi
from tests.services.enrollments.fakes import COURSES_URL, PAYMENTS_URL, USERS_URL, FakeUpstreams


async def test_the_saga_runs_embedded_on_sqlite(tmp_path: Path) -> None:
    settings = EnrollmentsSettings(
        **{
            **embedded(tmp_path),
            "redis_key_prefix": f"test:{uuid.uuid4().hex[:12]}:",
            "users_url": USERS_URL,
            "courses_url": COURSES_URL,
            "payments_url": PAYMENTS_URL,
        }
    )
    fakes = FakeUpstreams(TokenVerifier(settings))
    app = create_app(settings, transport=fakes.transport())
    async with running(app) as client:
        api = EnrollmentsApi(client, app, settings, fakes)
        course_id = fakes.add_course(capacity=2, lessons=1)
        students = [api.student() for _ in range(4)]

        replies = await asyncio.gather(*(api.enroll(headers, course_id) for _, headers in students))

        assert Counter(r.status_code for r in replies) == {201: 2, 409: 2}
        winners = [
            (r.json(), headers) for r, (_, headers) in zip(replies, students, strict=True) if r.status_code == 201
        ]
        (paid, owner), (unpaid, _) = winners
        await api.pay(paid)
        lesson = fakes.courses[str(course_id)]["lessons"][0]["id"]
        done = await client.put(
            f"/enrollments/{paid['enrollment_id']}/progress",
            json={"lesson_id": lesson, "completed": True},
            headers=owner,
        )
        assert done.json()["course_completed"] is True
        await api.deliver(fakes.payment_failed(unpaid["order"]["order_id"]))

        assert fakes.seats_taken(course_id) == 1
        assert [e.type for e in await api.outbox() if e.type != "enrollment.created"] == [
            "enrollment.confirmed",
            "enrollment.progress_updated",
            "enrollment.completed",
            "enrollment.cancelled",
        ]
        # The partial unique index itself, not only the saga's check: a second active row is refused.
        (row,) = [e for e in await api.enrollments() if e.status == "confirmed"]
        twin = Enrollment(
            id=uuid.uuid4(),
            user_id=row.user_id,
            course_id=row.course_id,
            saga_id=uuid.uuid4(),
            course_title="twin",
            status="pending_payment",
            amount_paise=1,
            currency="INR",
        )
        with pytest.raises(IntegrityError):
            async with app.state.kit.db.session_scope() as db:
                db.add(twin)
