"""Monthly partitions of the raw events on PostgreSQL, and the retention job."""

from __future__ import annotations

import uuid
from datetime import timedelta

from services.analytics import repository
from services.analytics.partitions import add_months, month_of, partition_name
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, learning_event


async def partitions(api: AnalyticsApi) -> list[str]:
    async with api.app.state.kit.db.engine.connect() as conn:
        return await repository.list_partitions(conn=conn)


async def test_partitions_exist_from_last_month_to_two_ahead(analytics: AnalyticsApi) -> None:
    this_month = month_of(utcnow())
    expected = {partition_name(add_months(this_month, n)) for n in range(-1, 3)}
    assert expected <= set(await partitions(analytics))


async def test_an_older_month_gets_its_partition_when_events_arrive_for_it(analytics: AnalyticsApi) -> None:
    api = analytics
    five_months_ago = utcnow() - timedelta(days=150)
    response = await api.send([learning_event(uuid.uuid4(), occurred_at=five_months_ago.isoformat())])
    assert response.status_code == 202, response.text
    assert partition_name(month_of(five_months_ago)) in await partitions(api)
    assert await api.stored_events() == 1


async def test_retention_drops_months_older_than_24_and_keeps_the_rest(analytics: AnalyticsApi) -> None:
    api = analytics
    this_month = month_of(utcnow())
    expired, kept = add_months(this_month, -30), add_months(this_month, -24)
    keeper = api.ctx.partitions
    await keeper.ensure([expired, kept])
    assert {partition_name(expired), partition_name(kept)} <= set(await partitions(api))

    dropped = await keeper.drop_expired(utcnow())
    assert dropped == [partition_name(expired)]
    names = set(await partitions(api))
    assert partition_name(expired) not in names
    assert {partition_name(kept), partition_name(this_month)} <= names
    assert expired not in keeper.known
