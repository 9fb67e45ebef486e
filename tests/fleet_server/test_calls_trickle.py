"""Trickled ICE (issue 16, item 1): the browser's candidates, sent after its offer, reach the
counter of the call in order — held with the offer while the counter is away — and only
when they come from the agent who holds the call; a counter that did not say it takes them
never has the browser told to trickle."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from fleet_server.calls.parties import AgentSession
from fleet_server.calls.relay import PENDING_CANDIDATES_MAX
from fleet_server.models import User
from fleet_server.security import auth
from guichet import signalling as sig
from tests.fleet_server.test_calls import SDP_OFFER, World, link, make_world

UFRAG = "Xk3v"
HOST = "candidate:1467250027 1 udp 2122260223 192.0.2.10 51394 typ host generation 0"
RELAY = "candidate:2 1 udp 41885439 203.0.113.9 3478 typ relay raddr 198.51.100.4 rport 61004"


def candidate(call_id: uuid.UUID, line: str | None, ufrag: str = UFRAG) -> sig.Candidate:
    body = sig.IceCandidate(candidate=line, sdp_mid="0", sdp_mline_index=0) if line else None
    return sig.Candidate(call_id=call_id, ufrag=ufrag, candidate=body)


def said(party: AgentSession) -> list[object]:
    """What the server sent this agent since last asked, queue updates aside."""
    return [m for m in link(party).drain() if not isinstance(m, sig.Queue)]


async def _trickled_call(
    world: World, *, trickle: bool = True
) -> tuple[sig.CallTaken, AgentSession, uuid.UUID]:
    alice = world.agent("alice")
    await world.manager.agent_connected(alice)
    counter = world.counter()
    await world.manager.counter_connected(counter)
    call_id = uuid.uuid4()
    request = sig.CallRequest(call_id=call_id, trickle_ice=trickle)
    await world.manager.counter_message(counter, request)
    await link(counter).expect(sig.CallQueued, skip=(sig.Welcome,))
    await world.manager.agent_message(alice, sig.Answer(call_id=call_id))
    taken = await link(alice).expect(sig.CallTaken)
    await link(counter).expect(sig.CallAnswered)
    return taken, alice, call_id


async def test_candidates_follow_the_offer_to_the_counter_in_order(db_url: str) -> None:
    async for world in make_world(db_url):
        taken, alice, call_id = await _trickled_call(world)
        assert taken.by_me
        assert taken.trickle_ice
        counter = world.manager.active_calls()[0].counter
        assert counter is not None
        sent = [
            sig.Description(call_id=call_id, description=SDP_OFFER),
            candidate(call_id, HOST),
            candidate(call_id, RELAY),
            candidate(call_id, None),
        ]
        for message in sent:
            await world.manager.agent_message(alice, message)
        assert link(counter).drain() == sent
        assert said(alice) == []  # nothing to say back


async def test_an_older_counter_never_has_the_browser_trickle(db_url: str) -> None:
    async for world in make_world(db_url):
        taken, _alice, _call_id = await _trickled_call(world, trickle=False)
        assert taken.by_me
        assert not taken.trickle_ice


async def test_only_the_agent_holding_the_call_reaches_its_counter(db_url: str) -> None:
    """Another agent of the service, an agent of another service (another public body)
    and a watcher send candidates for the call: none reaches the counter, and none of them
    learns anything from an answer either."""
    async for world in make_world(db_url):
        with world.sessions.begin() as session:
            auth.upsert_user(session, "marc", "mot de passe long", role="agent", service="msa")
        with world.sessions() as session:
            marc_id = session.scalars(select(User.id).where(User.username == "marc")).one()
        _taken, alice, call_id = await _trickled_call(world)
        counter = world.manager.active_calls()[0].counter
        assert counter is not None
        link(counter).drain()
        bob = world.agent("bob")
        marc = AgentSession(link(bob).__class__(), marc_id, "msa")
        watcher = AgentSession(link(bob).__class__(), world.agents["alice"], "caf", False)
        for intruder in (bob, marc, watcher):
            await world.manager.agent_connected(intruder)
            link(intruder).drain()
            await world.manager.agent_message(intruder, candidate(call_id, HOST))
            await world.manager.agent_message(intruder, candidate(call_id, None))
            assert said(intruder) == []
        assert link(counter).drain() == []
        # A candidate naming a call that does not exist, from the call's own agent: dropped.
        await world.manager.agent_message(alice, candidate(uuid.uuid4(), HOST))
        assert link(counter).drain() == []
        assert said(alice) == []


async def test_candidates_wait_with_the_offer_for_a_counter_that_resumes(db_url: str) -> None:
    async for world in make_world(db_url, resume_window_s=5.0):
        _taken, alice, call_id = await _trickled_call(world)
        first = world.manager.active_calls()[0].counter
        assert first is not None
        await world.manager.counter_disconnected(first)
        # An offer, its candidates; then an ICE restart's offer: the first ones are stale.
        stale = sig.Description(call_id=call_id, description=SDP_OFFER)
        await world.manager.agent_message(alice, stale)
        await world.manager.agent_message(alice, candidate(call_id, HOST, ufrag="old1"))
        restart = sig.Description(
            call_id=call_id, description=sig.SessionDescription(type="offer", sdp="v=0\r\n")
        )
        await world.manager.agent_message(alice, restart)
        held = [candidate(call_id, HOST), candidate(call_id, None)]
        for message in held:
            await world.manager.agent_message(alice, message)
        for _ in range(PENDING_CANDIDATES_MAX + 10):  # a misbehaving page: bounded
            await world.manager.agent_message(alice, candidate(call_id, RELAY))
        again = world.counter()
        await world.manager.counter_connected(again)
        await link(again).expect(sig.Welcome)
        await world.manager.counter_message(again, sig.Resume(call_id=call_id))
        await link(again).expect(sig.CallAnswered)
        received = link(again).drain()
        assert received[0] == restart
        assert received[1:3] == held
        assert len(received) == 1 + PENDING_CANDIDATES_MAX
        assert world.manager.active_calls()[0].pending_candidates == []
