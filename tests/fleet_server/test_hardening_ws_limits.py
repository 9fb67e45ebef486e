"""Issue 12, finding 12: WebSocket frames up to 16 MiB were buffered before the contract's
256 KiB check, and a socket could send as many messages as it liked. The server now refuses
a frame over the contract's limit at the protocol level, and closes a flooding socket."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from guichet import signalling as sig
from tests.support.live_server import LiveApp, live_app, receive


@pytest.fixture
async def live(db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(db_url) as app:
        app.add_user("alice")
        yield app


async def test_a_frame_over_the_contracts_limit_is_refused_unread(live: LiveApp) -> None:
    token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    async with live.counter_socket(token) as ws:
        await receive(ws, "welcome")
        await ws.send("x" * (sig.MAX_MESSAGE_BYTES * 4))  # 1 MiB: never buffered whole
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws, "never", skip=("error",))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # "message too big"


async def _flood(ws: ClientConnection, message: str) -> None:
    for _ in range(5_000):
        await ws.send(message)
    await receive(ws, "never", skip=("error", "queue"))


async def test_a_flooding_agent_socket_is_closed(live: LiveApp) -> None:
    alice = await live.login("alice")
    try:
        async with live.agent_socket(alice) as ws:
            await receive(ws, "queue", skip=())
            hangup = json.dumps({"type": "hangup", "call_id": str(uuid.uuid4())})
            with pytest.raises(ConnectionClosed) as closed:
                await _flood(ws, hangup)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
    finally:
        await alice.aclose()
