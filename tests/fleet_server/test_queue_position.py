"""Issue 15: a queued counter learns its place in the service's queue and a rough wait, at
once and again whenever they change (the call manager on a real database, fake links)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from fleet_server.calls.parties import TYPICAL_CALL_S
from fleet_server.models import Device
from guichet import signalling as sig
from tests.fleet_server.test_calls import World, link, make_world


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async for w in make_world(db_url):
        with w.sessions.begin() as session:
            session.add(Device(id="second", site="Vallée de la Gorre", name="CIAS", service="caf"))
        yield w


async def test_position_and_estimate_follow_the_queue(world: World) -> None:
    first, second = world.counter(), world.counter("second")
    for counter in (first, second):
        await world.manager.counter_connected(counter)
        await link(counter).expect(sig.Welcome)

    call_1 = uuid.uuid4()
    await world.manager.counter_message(first, sig.CallRequest(call_id=call_1))
    queued = await link(first).expect(sig.CallQueued)
    assert (queued.position, queued.estimated_wait_s) == (1, None)  # no agent: nobody can say

    alice = world.agent("alice")
    await world.manager.agent_connected(alice)  # an agent comes: the estimate can be told
    queued = await link(first).expect(sig.CallQueued)
    assert (queued.position, queued.estimated_wait_s) == (1, 0)

    call_2 = uuid.uuid4()
    await world.manager.counter_message(second, sig.CallRequest(call_id=call_2))
    queued = await link(second).expect(sig.CallQueued)
    assert (queued.position, queued.estimated_wait_s) == (2, TYPICAL_CALL_S)
    assert link(first).drain() == []  # nothing changed for the first

    await world.manager.agent_message(alice, sig.Answer(call_id=call_1))
    assert (await link(first).expect(sig.CallAnswered)).call_id == call_1
    queued = await link(second).expect(sig.CallQueued)
    assert (queued.call_id, queued.position, queued.estimated_wait_s) == (call_2, 1, 0)
