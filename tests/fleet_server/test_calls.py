"""The call manager on a real database (SQLite and PostgreSQL), driven through fake links:
lifecycle, exactly one answer, missed calls, resume within the window, failure beyond it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.calls.manager import CallManager
from fleet_server.calls.parties import AgentSession, CounterSession
from fleet_server.calls.store import CallJournal, CounterInfo
from fleet_server.db import make_engine, make_session_factory, migrate
from fleet_server.models import Appointment, CallRecord, Device, ScheduleRule, Service, User
from fleet_server.scheme.schedules import ScheduleOptions
from fleet_server.security import auth
from guichet import signalling as sig
from guichet.contract import utcnow
from guichet.schedule import PARIS

M = TypeVar("M", bound=BaseModel)
WAIT_S = 5.0
SDP_OFFER = sig.SessionDescription(type="offer", sdp="v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
SDP_ANSWER = sig.SessionDescription(type="answer", sdp="v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")


@dataclass
class FakeLink:
    inbox: asyncio.Queue[BaseModel] = field(default_factory=asyncio.Queue)
    closed: tuple[int, str] | None = None

    def send(self, message: BaseModel) -> None:
        self.inbox.put_nowait(message)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def expect(self, kind: type[M], *, skip: tuple[type[Any], ...] = (sig.Queue,)) -> M:
        """The next message of ``kind``, skipping only the kinds in ``skip``."""
        async with asyncio.timeout(WAIT_S):
            while True:
                message = await self.inbox.get()
                if isinstance(message, kind):
                    return message
                assert isinstance(message, skip), f"expected {kind.__name__}, got {message!r}"

    def drain(self) -> list[BaseModel]:
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out


@dataclass
class World:
    manager: CallManager
    sessions: sessionmaker[Session]
    agents: dict[str, int]

    def counter(self, device_id: str = "monts-de-chalus") -> CounterSession:
        return CounterSession(FakeLink(), CounterInfo(device_id, "Monts de Châlus", "Mairie"))

    def agent(self, username: str, service: str = "caf") -> AgentSession:
        return AgentSession(FakeLink(), self.agents[username], service)

    async def record(self, call_id: uuid.UUID) -> CallRecord:
        await self.manager.settled()
        with self.sessions() as session:
            return session.scalars(select(CallRecord).where(CallRecord.id == call_id)).one()


def link(party: CounterSession | AgentSession) -> FakeLink:
    assert isinstance(party.link, FakeLink)
    return party.link


async def make_world(db_url: str, **timing: Any) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, db_url)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        session.add(
            Device(id="monts-de-chalus", site="Monts de Châlus", name="Mairie", service="caf")
        )
        session.add(Device(id="sans-service", site="Vallée de la Gorre", name="CIAS"))
        for name in ("alice", "bob"):
            auth.upsert_user(session, name, "mot de passe long", role="agent", service="caf")
    with sessions() as session:
        agents = {u.username: u.id for u in session.scalars(select(User))}
    timing = {"ring_timeout_s": 30.0, "resume_window_s": 30.0} | timing
    manager = CallManager(CallJournal(sessions), **timing)
    await manager.start()
    try:
        yield World(manager, sessions, agents)
    finally:
        await manager.stop()
        assert manager.task_errors == []
        engine.dispose()


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async for w in make_world(db_url):
        yield w


async def _queued_call(world: World) -> tuple[CounterSession, uuid.UUID]:
    counter = world.counter()
    await world.manager.counter_connected(counter)
    welcome = await link(counter).expect(sig.Welcome)
    assert (welcome.service, welcome.service_label) == ("caf", "Caf")
    call_id = uuid.uuid4()
    await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
    queued = await link(counter).expect(sig.CallQueued)
    assert queued.call_id == call_id
    return counter, call_id


async def test_call_lifecycle_with_exactly_one_answer(world: World) -> None:
    alice, bob = world.agent("alice"), world.agent("bob")
    for agent in (alice, bob):
        await world.manager.agent_connected(agent)
        assert (await link(agent).expect(sig.Queue, skip=())).calls == []
    counter, call_id = await _queued_call(world)
    for agent in (alice, bob):
        queue = await link(agent).expect(sig.Queue, skip=())
        assert [(c.call_id, c.site) for c in queue.calls] == [(call_id, "Monts de Châlus")]

    answer = sig.Answer(call_id=call_id)
    await asyncio.gather(
        world.manager.agent_message(alice, answer), world.manager.agent_message(bob, answer)
    )
    taken = {
        name: await link(a).expect(sig.CallTaken) for name, a in [("alice", alice), ("bob", bob)]
    }
    assert sorted(t.by_me for t in taken.values()) == [False, True]
    winner, loser = (alice, bob) if taken["alice"].by_me else (bob, alice)
    assert (await link(counter).expect(sig.CallAnswered)).agent_label == "Conseiller Caf"
    assert (await link(loser).expect(sig.Queue, skip=(sig.CallTaken,))).calls == []

    await world.manager.agent_message(
        winner, sig.Description(call_id=call_id, description=SDP_OFFER)
    )
    assert (await link(counter).expect(sig.Description)).description == SDP_OFFER
    await world.manager.counter_message(
        counter, sig.Description(call_id=call_id, description=SDP_ANSWER)
    )
    assert (await link(winner).expect(sig.Description)).description == SDP_ANSWER
    await world.manager.counter_message(counter, sig.MediaState(call_id=call_id, state="connected"))
    assert (await link(winner).expect(sig.MediaState)).state == "connected"

    # The loser cannot take part in the call.
    await world.manager.agent_message(
        loser, sig.Description(call_id=call_id, description=SDP_OFFER)
    )
    assert (await link(loser).expect(sig.Error, skip=(sig.CallTaken, sig.Queue))).code == (
        "not_your_call"
    )

    await world.manager.agent_message(winner, sig.Hangup(call_id=call_id, reason="hangup_agent"))
    for party in (counter, winner):
        ended = await link(party).expect(sig.CallEnded, skip=(sig.Queue, sig.MediaState))
        assert (ended.call_id, ended.reason) == (call_id, "hangup_agent")
    row = await world.record(call_id)
    assert row.end_reason == "hangup_agent"
    assert row.service == "caf"
    assert row.site == "Monts de Châlus"
    assert row.agent_user_id == world.agents["alice" if winner is alice else "bob"]
    assert row.requested_at <= row.answered_at <= row.ended_at  # type: ignore[operator]
    assert world.manager.active_calls() == []


async def test_counter_hangup_while_waiting_is_cancelled(world: World) -> None:
    counter, call_id = await _queued_call(world)
    await world.manager.counter_message(
        counter, sig.Hangup(call_id=call_id, reason="hangup_counter")
    )
    assert (await link(counter).expect(sig.CallEnded)).reason == "cancelled"
    assert (await world.record(call_id)).end_reason == "cancelled"


async def test_a_second_request_during_a_call_is_refused(world: World) -> None:
    counter, call_id = await _queued_call(world)
    await world.manager.counter_message(counter, sig.CallRequest(call_id=uuid.uuid4()))
    assert (await link(counter).expect(sig.Error)).code == "call_in_progress"
    # Repeating the same request (a retry) just confirms it.
    await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
    assert (await link(counter).expect(sig.CallQueued)).call_id == call_id


async def test_a_counter_without_service_gets_an_error(world: World) -> None:
    counter = world.counter("sans-service")
    await world.manager.counter_connected(counter)
    assert (await link(counter).expect(sig.Welcome)).service is None
    await world.manager.counter_message(counter, sig.CallRequest(call_id=uuid.uuid4()))
    error = await link(counter).expect(sig.Error)
    assert error.code == "no_service"
    assert world.manager.active_calls() == []


async def test_unanswered_call_is_missed_and_counted(db_url: str) -> None:
    async for world in make_world(db_url, ring_timeout_s=0.2):
        alice = world.agent("alice")
        await world.manager.agent_connected(alice)
        assert (await link(alice).expect(sig.Queue, skip=())).missed_today == 0
        counter, call_id = await _queued_call(world)
        assert (await link(counter).expect(sig.CallEnded)).reason == "missed"
        while True:  # the queue empties and counts the miss
            queue = await link(alice).expect(sig.Queue, skip=())
            if not queue.calls:
                break
        assert queue.missed_today == 1
        assert (await world.record(call_id)).end_reason == "missed"
        assert (await world.record(call_id)).answered_at is None


async def _answered_call(world: World) -> tuple[CounterSession, AgentSession, uuid.UUID]:
    alice = world.agent("alice")
    await world.manager.agent_connected(alice)
    counter, call_id = await _queued_call(world)
    await world.manager.agent_message(alice, sig.Answer(call_id=call_id))
    assert (await link(alice).expect(sig.CallTaken)).by_me
    await link(counter).expect(sig.CallAnswered)
    return counter, alice, call_id


async def test_counter_resumes_within_the_window(db_url: str) -> None:
    async for world in make_world(db_url, resume_window_s=0.5):
        counter, alice, call_id = await _answered_call(world)
        await world.manager.counter_disconnected(counter)
        # An ICE-restart offer sent while the counter is away waits for it.
        restart = sig.Description(call_id=call_id, description=SDP_OFFER)
        await world.manager.agent_message(alice, restart)
        again = world.counter()
        await world.manager.counter_connected(again)
        await link(again).expect(sig.Welcome)
        await world.manager.counter_message(again, sig.Resume(call_id=call_id))
        assert (await link(again).expect(sig.CallAnswered)).call_id == call_id
        assert (await link(again).expect(sig.Description)).description == SDP_OFFER
        await asyncio.sleep(0.8)  # beyond the window: the resumed call must still be up
        assert [c.id for c in world.manager.active_calls()] == [call_id]
        assert not any(isinstance(m, sig.CallEnded) for m in link(alice).drain())


async def test_counter_lost_beyond_the_window_fails_the_call(db_url: str) -> None:
    async for world in make_world(db_url, resume_window_s=0.2):
        counter, alice, call_id = await _answered_call(world)
        await world.manager.counter_disconnected(counter)
        assert (await link(alice).expect(sig.CallEnded)).reason == "failed"
        assert (await world.record(call_id)).end_reason == "failed"
        late = world.counter()
        await world.manager.counter_connected(late)
        await world.manager.counter_message(late, sig.Resume(call_id=call_id))
        assert (await link(late).expect(sig.CallEnded, skip=(sig.Welcome,))).reason == "failed"


async def test_agent_reconnects_within_the_window_and_gets_the_call_back(db_url: str) -> None:
    async for world in make_world(db_url, resume_window_s=0.5):
        counter, alice, call_id = await _answered_call(world)
        await world.manager.agent_disconnected(alice)
        answer = sig.Description(call_id=call_id, description=SDP_ANSWER)
        await world.manager.counter_message(counter, answer)
        back = world.agent("alice")
        await world.manager.agent_connected(back)
        taken = await link(back).expect(sig.CallTaken)
        assert (taken.call_id, taken.by_me) == (call_id, True)
        assert (await link(back).expect(sig.Description)).description == SDP_ANSWER


async def test_agent_lost_beyond_the_window_fails_the_call(db_url: str) -> None:
    async for world in make_world(db_url, resume_window_s=0.2):
        counter, alice, call_id = await _answered_call(world)
        await world.manager.agent_disconnected(alice)
        assert (await link(counter).expect(sig.CallEnded)).reason == "failed"
        assert (await world.record(call_id)).end_reason == "failed"


async def test_a_new_counter_connection_replaces_the_old_one(world: World) -> None:
    first = world.counter()
    await world.manager.counter_connected(first)
    second = world.counter()
    await world.manager.counter_connected(second)
    closed = link(first).closed
    assert closed is not None
    assert closed[0] == 4409


async def test_stop_ends_active_calls(db_url: str) -> None:
    async for world in make_world(db_url):
        counter, _alice, call_id = await _answered_call(world)
        await world.manager.stop()
        assert (await link(counter).expect(sig.CallEnded)).reason == "server_shutdown"
        assert (await world.record(call_id)).end_reason == "server_shutdown"


async def test_watchers_see_the_queue_but_cannot_answer(world: World) -> None:
    watcher = AgentSession(FakeLink(), world.agents["alice"], "caf", can_answer=False)
    await world.manager.agent_connected(watcher)
    _counter, call_id = await _queued_call(world)
    await world.manager.agent_message(watcher, sig.Answer(call_id=call_id))
    assert (await link(watcher).expect(sig.Error)).code == "watch_only"


# --- routing by schedule: appointments, permanences, several services, closed ----------

THURSDAY_11 = datetime(2027, 3, 25, 11, 0, tzinfo=PARIS)  # Caf 9–12 and MSA 11–12 open


def _seed_schedules(world: World) -> None:
    """Counters without a fixed service: ``rdv`` has an appointment with bob now; ``deux``
    has Caf and MSA open on Thursday 11–12; Caf calls fall back to everyone after 2 s."""
    now = utcnow()
    with world.sessions.begin() as session:
        session.get_one(Service, "caf").fallback_s = 2
        session.add(Device(id="rdv", site="Monts de Châlus", name="Mairie"))
        session.add(Device(id="deux", site="Vallée de la Gorre", name="CIAS"))
        session.flush()
        session.add(
            Appointment(
                service="caf",
                device_id="rdv",
                start=now - timedelta(minutes=1),
                end=now + timedelta(minutes=29),
                agent_user_id=world.agents["bob"],
                created_at=now,
                created_by="accueil",
            )
        )
        for service, start in (("caf", 9), ("msa", 11)):
            session.add(
                ScheduleRule(
                    service=service,
                    mode="slot",
                    device_id="deux",
                    weekday=3,
                    start_time=time(start),
                    end_time=time(12),
                )
            )


async def test_an_appointment_rings_its_agent_first_then_the_others(world: World) -> None:
    _seed_schedules(world)
    alice, bob = world.agent("alice"), world.agent("bob")
    for agent in (alice, bob):
        await world.manager.agent_connected(agent)
        assert (await link(agent).expect(sig.Queue, skip=())).calls == []
    counter = world.counter("rdv")
    await world.manager.counter_connected(counter)
    assert (await link(counter).expect(sig.Welcome)).service == "caf"
    call_id = uuid.uuid4()
    await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
    assert (await link(counter).expect(sig.CallQueued)).service == "caf"
    assert [c.call_id for c in (await link(bob).expect(sig.Queue, skip=())).calls] == [call_id]
    assert (await link(alice).expect(sig.Queue, skip=())).calls == []  # not offered to her
    await world.manager.agent_message(alice, sig.Answer(call_id=call_id))
    assert (await link(alice).expect(sig.Error, skip=())).code == "reserved"
    # After the fallback time, alice's console lists it too, and she may answer.
    queue = await link(alice).expect(sig.Queue, skip=())
    assert [c.call_id for c in queue.calls] == [call_id]
    await world.manager.agent_message(alice, sig.Answer(call_id=call_id))
    assert (await link(alice).expect(sig.CallTaken)).by_me
    assert not (await link(bob).expect(sig.CallTaken)).by_me
    assert (await world.record(call_id)).agent_user_id == world.agents["alice"]


async def test_the_booked_agent_answers_within_the_window(world: World) -> None:
    _seed_schedules(world)
    alice, bob = world.agent("alice"), world.agent("bob")
    for agent in (alice, bob):
        await world.manager.agent_connected(agent)
    counter = world.counter("rdv")
    await world.manager.counter_connected(counter)
    call_id = uuid.uuid4()
    await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
    await link(counter).expect(sig.CallQueued, skip=(sig.Welcome,))
    await world.manager.agent_message(bob, sig.Answer(call_id=call_id))
    assert (await link(bob).expect(sig.CallTaken)).by_me
    # Alice never saw it: she gets no "taken" and no queue listing it, ever.
    await world.manager.agent_message(bob, sig.Hangup(call_id=call_id, reason="hangup_agent"))
    await link(counter).expect(sig.CallEnded, skip=(sig.CallAnswered,))
    for message in link(alice).drain():
        assert not isinstance(message, sig.CallTaken)
        if isinstance(message, sig.Queue):
            assert message.calls == []


async def test_several_open_services_need_the_citizens_choice(db_url: str) -> None:
    options = ScheduleOptions(phone="05 55 00 00 00")
    async for world in make_world(db_url, clock=lambda: THURSDAY_11, schedule_options=options):
        _seed_schedules(world)
        counter = world.counter("deux")
        await world.manager.counter_connected(counter)
        assert (await link(counter).expect(sig.Welcome)).service is None  # several open
        await world.manager.counter_message(counter, sig.CallRequest(call_id=uuid.uuid4()))
        error = await link(counter).expect(sig.Error)
        assert error.code == "choose_service"
        assert "Caf, MSA" in error.message
        await world.manager.counter_message(
            counter, sig.CallRequest(call_id=uuid.uuid4(), service="carsat")
        )
        assert (await link(counter).expect(sig.Error)).code == "service_closed"
        call_id = uuid.uuid4()
        await world.manager.counter_message(
            counter, sig.CallRequest(call_id=call_id, service="msa")
        )
        queued = await link(counter).expect(sig.CallQueued)
        assert (queued.call_id, queued.service, queued.service_label) == (call_id, "msa", "MSA")
        assert (await world.record(call_id)).service == "msa"


async def test_a_closed_counter_refuses_with_its_next_openings(db_url: str) -> None:
    at_noon = THURSDAY_11 + timedelta(hours=1)
    options = ScheduleOptions(phone="05 55 00 00 00")
    async for world in make_world(db_url, clock=lambda: at_noon, schedule_options=options):
        _seed_schedules(world)
        counter = world.counter("deux")
        await world.manager.counter_connected(counter)
        assert (await link(counter).expect(sig.Welcome)).service is None
        await world.manager.counter_message(counter, sig.CallRequest(call_id=uuid.uuid4()))
        error = await link(counter).expect(sig.Error)
        assert error.code == "closed"
        assert error.message.splitlines() == [
            "Aucun service n'est ouvert.",
            "Caf : jeudi 1er avril 9 h",
            "MSA : jeudi 1er avril 11 h",
            "Téléphone : 05 55 00 00 00",
        ]
        assert world.manager.active_calls() == []
