"""Issue 12, finding 6: ten truly concurrent enrolment requests on a one-use token were all
accepted on PostgreSQL. Now one is, whatever the database (atomic conditional UPDATE)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from fleet_server.models import EnrolmentRequest, EnrolmentToken
from fleet_server.security import enrolment
from tests.support.live_server import live_app


async def test_a_one_use_token_is_used_once_by_ten_concurrent_requests(db_url: str) -> None:
    async with live_app(db_url) as app:
        with app.sessions.begin() as session:
            token = enrolment.create_token(
                session, site="Site", valid_hours=1, max_uses=1, pre_approved=False, actor="t"
            )

        async def one(i: int, client: httpx.AsyncClient, start: asyncio.Event) -> int:
            body = {"token": token, "device_id": f"guichet-{i:02d}", "hardware_id": f"hw:{i:04d}"}
            await start.wait()
            return (await client.post("/api/v1/enrol", json=body)).status_code

        start = asyncio.Event()
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=app.url, limits=limits, timeout=30) as client:
            tasks = [asyncio.create_task(one(i, client, start)) for i in range(10)]
            await asyncio.sleep(0)  # every task waits on the event: released together
            start.set()
            codes = await asyncio.gather(*tasks)
        assert sorted(codes) == [202] + [403] * 9
        with app.sessions() as session:
            assert session.scalars(select(EnrolmentToken.uses)).one() == 1
            assert len(session.scalars(select(EnrolmentRequest)).all()) == 1
