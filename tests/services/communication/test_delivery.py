from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.communication.app import create_app
from services.communication.models import Message
from services.kit.time import utcnow
from tests.apps import running
from tests.conftest import free_port
from tests.services.communication.conftest import CommunicationApi, SmtpInbox, settings_for

RESULT = {"name": "Asha", "topic": "genetics", "score": 8, "max_score": 10, "percentage": 80.0}


@pytest.fixture
async def smtp_down(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[CommunicationApi]:
    """The service with its SMTP server pointing at a port nothing listens on."""
    settings = settings_for(pg_schema, redis_prefix, tmp_path, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    app = create_app(settings)
    async with running(app) as client:
        yield CommunicationApi(client, app, settings)


async def _metrics(comms: CommunicationApi) -> str:
    return (await comms.client.get("/metrics", headers={"Accept": "text/plain"})).text


async def test_a_failing_provider_is_retried_with_backoff_then_marked_failed(smtp_down: CommunicationApi) -> None:
    comms = smtp_down
    user_id, _ = await comms.register()  # its welcome email cannot be delivered
    (welcome,) = await comms.messages(user_id)

    before = utcnow()
    assert await comms.dispatch() == 1
    first = await comms.message(welcome.id)
    assert (first.status, first.attempts) == ("queued", 1)
    assert "SMTP unavailable" in (first.error or "")
    assert timedelta(seconds=10) <= first.next_attempt_at - before <= timedelta(seconds=12)

    assert await comms.dispatch() == 0  # not due yet: backing off
    assert await comms.dispatch(now=first.next_attempt_at) == 1
    second = await comms.message(welcome.id)
    assert (second.status, second.attempts) == ("queued", 2)
    assert timedelta(seconds=20) <= second.next_attempt_at - first.next_attempt_at <= timedelta(seconds=22.1)

    assert await comms.dispatch(now=second.next_attempt_at) == 1
    final = await comms.message(welcome.id)
    assert (final.status, final.attempts) == ("failed", 3)
    response = await comms.client.get(f"/notifications/{user_id}", headers=comms.admin)
    (item,) = response.json()["items"]
    assert [s["status"] for s in item["history"]] == ["queued", "retrying", "retrying", "failed"]
    assert await comms.dispatch(now=final.next_attempt_at + timedelta(days=1)) == 0


async def test_a_flaky_provider_ends_delivered_after_three_attempts(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone="+919812345678")
    comms.sandbox("whatsapp").fail_next = 2
    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp"])
    (message_id,) = response.json()["message_ids"]

    await comms.dispatch()
    assert 'cerebrum_notification_queue_depth{channel="whatsapp"} 1.0' in await _metrics(comms), "waits to retry"
    retry_at = (await comms.message(message_id)).next_attempt_at
    await comms.dispatch(now=retry_at)
    retry_at = (await comms.message(message_id)).next_attempt_at
    await comms.dispatch(now=retry_at)
    assert 'cerebrum_notification_queue_depth{channel="whatsapp"} 0.0' in await _metrics(comms), "sent at last"
    sent = await comms.message(message_id)
    assert (sent.status, sent.attempts, sent.error) == ("sent", 3, None)
    assert len(comms.sandbox("whatsapp").sent) == 1 and comms.sandbox("whatsapp").calls == 3

    report = {"events": [{"provider_message_id": sent.provider_message_id, "status": "delivered"}]}
    assert (await comms.webhook("whatsapp", report)).json() == {"updated": 1, "ignored": 0}
    delivered = await comms.message(message_id)
    assert (delivered.status, delivered.attempts) == ("delivered", 3)
    assert delivered.delivered_at is not None
    await comms.dispatch(now=retry_at + timedelta(hours=1))
    assert comms.sandbox("whatsapp").calls == 3  # nothing sent twice


async def test_a_permanent_refusal_is_not_retried(comms: CommunicationApi) -> None:
    user_id, _ = await comms.register(phone="+919812345678")
    comms.sandbox("sms").fail_next = 1
    comms.sandbox("sms").permanent = True
    response = await comms.notify(user_id, "assessment_result", RESULT, channels=["sms"])
    await comms.dispatch()
    failed = await comms.message(response.json()["message_ids"][0])
    assert (failed.status, failed.attempts) == ("failed", 1)


async def test_the_rate_limit_delays_messages_but_drops_none(
    pg_schema: str, redis_prefix: str, tmp_path: Path, smtp: tuple[SmtpInbox, int]
) -> None:
    settings = settings_for(pg_schema, redis_prefix, tmp_path, provider_rate_limit="4/second")
    app = create_app(settings)
    async with running(app) as client:
        comms = CommunicationApi(client, app, settings)
        user_id = await comms.known()
        ids = []
        for n in range(10):
            response = await comms.notify(user_id, "assessment_result", {**RESULT, "score": n}, channels=["in_app"])
            ids += response.json()["message_ids"]

        rounds = [await comms.dispatch()]
        assert rounds[0] == 4  # the first round sent what the limit allowed; the rest stayed queued
        queued = [m for m in await comms.messages(user_id) if m.status == "queued"]
        assert len(queued) == 6 and all(m.attempts == 0 for m in queued)
        while any(m.status == "queued" for m in await comms.messages(user_id)):
            await asyncio.sleep(0.25)
            rounds.append(await comms.dispatch())
        assert sum(rounds) == 10 and len([r for r in rounds if r]) >= 3
        messages = await comms.messages(user_id)
        assert sorted(str(m.id) for m in messages) == sorted(ids)
        assert {(m.status, m.attempts) for m in messages} == {("delivered", 1)}


async def test_the_dispatcher_loop_runs_from_startup(
    pg_schema: str, redis_prefix: str, tmp_path: Path, smtp: tuple[SmtpInbox, int]
) -> None:
    inbox, port = smtp
    settings = settings_for(
        pg_schema, redis_prefix, tmp_path, dispatcher_enabled=True, smtp_url=f"smtp://127.0.0.1:{port}"
    )
    app = create_app(settings)
    async with running(app) as client:
        comms = CommunicationApi(client, app, settings)
        user_id, address = await comms.register()
        # The mail arrives before the dispatcher commits "sent": wait for the status, not the mail.
        for _ in range(400):
            messages = await comms.messages(user_id)
            if messages and messages[0].status == "sent":
                break
            await asyncio.sleep(0.05)
        assert [m["To"] for m in inbox.received] == [address]
        (welcome,) = await comms.messages(user_id)
        assert welcome.status == "sent"
    assert app.state.dispatcher._task is None  # stopped with the app


async def test_queue_depth_and_counts_are_exported(comms: CommunicationApi) -> None:
    user_id = await comms.known()
    await comms.notify(user_id, "assessment_result", RESULT, channels=["in_app"])
    await comms.dispatcher.measure_queue()
    metrics = (await comms.client.get("/metrics", headers={"Accept": "text/plain"})).text
    assert 'cerebrum_notification_queue_depth{channel="in_app"} 1.0' in metrics
    await comms.dispatch()
    metrics = (await comms.client.get("/metrics", headers={"Accept": "text/plain"})).text
    assert 'cerebrum_notification_queue_depth{channel="in_app"} 0.0' in metrics
    assert 'cerebrum_notifications_total{channel="in_app",status="delivered"}' in metrics
    assert 'cerebrum_notifications_total{channel="in_app",status="queued"}' in metrics
    assert "cerebrum_notification_send_seconds_bucket" in metrics
    assert await comms.count(Message) == 1


async def test_a_stream_of_new_messages_does_not_hold_back_a_retry_on_another_channel(
    pg_schema: str, redis_prefix: str, tmp_path: Path, smtp: tuple[SmtpInbox, int]
) -> None:
    """Woken by new messages, the loop goes to their channel; it still looks at every channel each interval."""
    settings = settings_for(
        pg_schema,
        redis_prefix,
        tmp_path,
        dispatcher_enabled=True,
        dispatcher_interval_seconds=0.3,
        retry_backoff_seconds=0.2,
        smtp_url=f"smtp://127.0.0.1:{smtp[1]}",
    )
    app = create_app(settings)
    async with running(app) as client:
        comms = CommunicationApi(client, app, settings)
        user_id, _ = await comms.register(phone="+919812345678")
        comms.sandbox("whatsapp").fail_next = 1
        response = await comms.notify(user_id, "assessment_result", RESULT, channels=["whatsapp"])
        (retried,) = response.json()["message_ids"]
        for _ in range(200):  # a new in-app message every 25 ms, each waking the loop for its channel
            await comms.notify(user_id, "assessment_result", RESULT, channels=["in_app"])
            if (await comms.message(retried)).status == "sent":
                break
            await asyncio.sleep(0.025)
        whatsapp = await comms.message(retried)
        assert (whatsapp.status, whatsapp.attempts) == ("sent", 2)
        for _ in range(200):
            if all(m.status == "delivered" for m in await comms.messages(user_id) if m.channel == "in_app"):
                break
            await asyncio.sleep(0.025)
        assert {m.status for m in await comms.messages(user_id) if m.channel == "in_app"} == {"delivered"}
