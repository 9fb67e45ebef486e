"""The signalling WebSockets on the real app served by uvicorn, with the ``websockets`` client:
authentication, a whole call between a counter and two agents, contract errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from fleet_server.models import CallRecord
from tests.support.live_server import LiveApp, live_app, receive, send

SDP_OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
SDP_ANSWER = SDP_OFFER.replace("1 2", "3 4")


@pytest.fixture
async def live(db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(db_url) as app:
        for name in ("alice", "bob"):
            app.add_user(name)
        app.add_user("admin", role="admin", service=None)
        app.add_user("audrey", role="auditor", service=None)
        yield app


async def _close_code(connecting: object) -> int:
    async with connecting as ws:  # type: ignore[attr-defined]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return int(closed.value.rcvd.code)


async def test_counter_needs_its_call_token(live: LiveApp) -> None:
    live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    assert await _close_code(live.counter_socket(None)) == 4401
    assert await _close_code(live.counter_socket("gpc_wrong")) == 4401


async def test_agent_socket_needs_an_agent_session(live: LiveApp) -> None:
    assert await _close_code(live.agent_socket(None)) == 4401
    auditor = await live.login("audrey")
    try:
        assert await _close_code(live.agent_socket(auditor)) == 4403
    finally:
        await auditor.aclose()
    alice = await live.login("alice")
    try:
        foreign = live.agent_socket(alice, Origin="http://evil.example")
        assert await _close_code(foreign) == 4403
    finally:
        await alice.aclose()


async def test_a_whole_call_from_request_to_hangup(live: LiveApp) -> None:
    token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    alice, bob, admin = [await live.login(n) for n in ("alice", "bob", "admin")]
    try:
        async with (
            live.counter_socket(token) as counter,
            live.agent_socket(alice) as a,
            live.agent_socket(bob) as b,
            live.agent_socket(admin, "?service=caf") as watcher,
        ):
            welcome = await receive(counter, "welcome")
            assert (welcome["device_id"], welcome["service"]) == ("monts-de-chalus", "caf")
            assert welcome["ring_timeout_s"] == 120
            for agent in (a, b, watcher):
                assert (await receive(agent, "queue"))["calls"] == []

            call_id = str(uuid.uuid4())
            await send(counter, {"type": "call_request", "call_id": call_id})
            assert (await receive(counter, "call_queued"))["service_label"] == "Caf"
            for agent in (a, b, watcher):
                queue = await receive(agent, "queue")
                assert [c["call_id"] for c in queue["calls"]] == [call_id]
                assert queue["calls"][0]["site"] == "Monts de Châlus"

            await send(a, {"type": "answer", "call_id": call_id})
            assert (await receive(a, "call_taken"))["by_me"] is True
            assert (await receive(b, "call_taken"))["by_me"] is False
            answered = await receive(counter, "call_answered")
            assert answered["agent_label"] == "Conseiller Caf"

            offer = {"type": "offer", "sdp": SDP_OFFER}
            await send(a, {"type": "description", "call_id": call_id, "description": offer})
            assert (await receive(counter, "description"))["description"] == offer
            answer = {"type": "answer", "sdp": SDP_ANSWER}
            await send(counter, {"type": "description", "call_id": call_id, "description": answer})
            assert (await receive(a, "description"))["description"] == answer

            await send(a, {"type": "hangup", "call_id": call_id, "reason": "hangup_agent"})
            for ws in (a, counter):
                ended = await receive(ws, "call_ended")
                assert (ended["call_id"], ended["reason"]) == (call_id, "hangup_agent")
    finally:
        for client in (alice, bob):
            await client.aclose()
    await live.ctx.calls.settled()
    with live.sessions() as session:
        row = session.scalars(select(CallRecord)).one()
    assert (str(row.id), row.end_reason, row.device_id) == (
        call_id,
        "hangup_agent",
        "monts-de-chalus",
    )
    page = await admin.get("/devices/monts-de-chalus")
    assert f'data-call-id="{call_id}"' in page.text
    assert "Raccroché par l&#39;agent" in page.text
    await admin.aclose()


@pytest.mark.parametrize(
    "garbage",
    [
        "not json",
        b"\x00\xff binary garbage",
        '{"type": "description", "call_id": "nope", "description": {"type": "offer"}}',
        json.dumps(
            {
                "type": "description",
                "call_id": str(uuid.uuid4()),
                "description": {"type": "rollback", "sdp": "x"},
            }
        ),
        json.dumps({"type": "answer", "call_id": str(uuid.uuid4())}),  # an agent's message
        # Over the size limit: refused by the protocol (1009), test_hardening_ws_limits.py.
    ],
)
async def test_malformed_messages_get_an_error_and_the_link_stays_up(
    live: LiveApp, garbage: str | bytes
) -> None:
    token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    async with live.counter_socket(token) as counter:
        await receive(counter, "welcome")
        await counter.send(garbage)
        error = await receive(counter, "error")
        assert error["code"] == "bad_message"
        call_id = str(uuid.uuid4())
        await send(counter, {"type": "call_request", "call_id": call_id})
        assert (await receive(counter, "call_queued"))["call_id"] == call_id


async def test_a_description_outside_a_call_is_refused(live: LiveApp) -> None:
    token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    async with live.counter_socket(token) as counter:
        await receive(counter, "welcome")
        description = {"type": "answer", "sdp": SDP_ANSWER}
        call_id = str(uuid.uuid4())
        await send(counter, {"type": "description", "call_id": call_id, "description": description})
        assert (await receive(counter, "error"))["code"] == "not_in_call"


async def test_trickled_candidates_reach_only_their_call_s_counter(live: LiveApp) -> None:
    """The browser's candidates after its offer (issue 16): a garbage one is refused and the
    agent's link stays up; another agent's and another counter's never reach this call."""
    token = live.add_counter("monts-de-chalus", "Monts de Châlus", "Mairie")
    other_token = live.add_counter("vallee-de-la-gorre", "Vallée de la Gorre", "CIAS")
    alice, bob = [await live.login(n) for n in ("alice", "bob")]
    line = "candidate:1467250027 1 udp 2122260223 192.0.2.10 51394 typ host generation 0"
    try:
        async with (
            live.counter_socket(token) as counter,
            live.counter_socket(other_token) as other,
            live.agent_socket(alice) as a,
            live.agent_socket(bob) as b,
        ):
            await receive(counter, "welcome")
            await receive(other, "welcome")
            call_id = str(uuid.uuid4())
            request = {"type": "call_request", "call_id": call_id, "trickle_ice": True}
            await send(counter, request)
            await receive(counter, "call_queued")
            await send(a, {"type": "answer", "call_id": call_id})
            assert (await receive(a, "call_taken"))["trickle_ice"] is True
            assert (await receive(b, "call_taken"))["trickle_ice"] is False
            await receive(counter, "call_answered")

            def trickled(candidate: object) -> dict[str, object]:
                return {
                    "type": "candidate",
                    "call_id": call_id,
                    "ufrag": "Xk3v",
                    "candidate": candidate,
                }

            good = {"candidate": line, "sdp_mid": "0", "sdp_mline_index": 0}
            await send(a, trickled(good | {"candidate": "candidate:x; DROP TABLE calls"}))
            error = await receive(a, "error")
            assert error["code"] == "bad_message"
            assert "candidate" in error["message"]
            await send(b, trickled(good | {"candidate": line.replace("10", "66")}))
            await send(other, trickled(good | {"candidate": line.replace("10", "77")}))
            assert (await receive(other, "error"))["code"] == "bad_message"  # not a counter's
            await send(a, trickled(good))
            await send(a, trickled(None))
            assert (await receive(counter, "candidate"))["candidate"] == good
            assert (await receive(counter, "candidate"))["candidate"] is None
            await send(a, {"type": "hangup", "call_id": call_id, "reason": "hangup_agent"})
            assert (await receive(counter, "call_ended"))["call_id"] == call_id
    finally:
        for client in (alice, bob):
            await client.aclose()
