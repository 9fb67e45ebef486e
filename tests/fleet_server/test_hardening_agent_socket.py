"""Issue 12, finding 4: an agent deactivated, re-scoped or whose password is reset kept a
live ``/ws/agent`` and went on receiving the queue. Each of those closes it at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from fleet_server.models import User
from tests.support.live_server import WAIT_S, LiveApp, live_app, receive
from tests.support.webapp import CSRF_RE


@pytest.fixture
async def live(db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(db_url) as app:
        app.add_user("alice")  # an agent of the Caf
        app.add_user("admin", role="admin", service=None)
        yield app


async def _admin_post(
    live: LiveApp, admin: httpx.AsyncClient, path: str, form: dict[str, str]
) -> None:
    page = await admin.get("/admin/users")
    token = CSRF_RE.search(page.text)
    assert token
    response = await admin.post(path, data=form | {"csrf_token": token.group(1)})
    assert response.status_code in (200, 303), response.text


async def _queue_until_closed(ws: ClientConnection) -> None:
    """Read until the server closes; nothing but queue updates may come meanwhile."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = json.loads(await ws.recv())
            assert message["type"] == "queue"


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("active", {"active": "0"}),
        ("", {"role": "agent", "service": "msa"}),
        ("", {"role": "auditor"}),
        ("password", {"password": "a brand new password"}),
    ],
)
async def test_the_agents_live_socket_is_closed_at_once(
    live: LiveApp, action: str, form: dict[str, str]
) -> None:
    with live.sessions() as session:
        uid = session.scalar(select(User.id).where(User.username == "alice"))
    alice = await live.login("alice")
    admin = await live.login("admin")
    try:
        async with live.agent_socket(alice) as ws:
            await receive(ws, "queue", skip=())
            await _admin_post(live, admin, f"/admin/users/{uid}/{action}".rstrip("/"), form)
            with pytest.raises(ConnectionClosed) as closed:
                await _queue_until_closed(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code in (4401, 4403)
        async with live.agent_socket(alice) as again:  # and it cannot come back
            with pytest.raises(ConnectionClosed):
                await again.recv()
    finally:
        await alice.aclose()
        await admin.aclose()
