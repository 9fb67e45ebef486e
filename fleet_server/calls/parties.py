"""The parties and the call as the call manager holds them, and the messages built from them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from fleet_server.calls.store import CounterInfo, ServiceInfo
from guichet import signalling as sig
from guichet.logs import call_id_var

# A rough length of an answered call, for the wait a queued counter shows (the statistics
# of the Pays' pilot put most calls between 5 and 12 minutes). An estimate, said as such.
TYPICAL_CALL_S = 8 * 60
Standing = tuple[int, int | None]  # (position from 1, estimated wait in seconds or None)

# Why an agent may not answer a call yet (``reserved``), in French for their console.
RESERVED_TEXT = (
    "Cet appel est d'abord proposé à l'agent du rendez-vous ou de permanence ; "
    "il vous sera proposé s'il ne répond pas."
)


class Link(Protocol):
    """One party's connection, as the manager sees it."""

    def send(self, message: BaseModel) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class CounterSession:
    link: Link
    info: CounterInfo


@dataclass(eq=False)
class AgentSession:
    link: Link
    user_id: int
    service: str
    can_answer: bool = True  # False for an administrator watching a service


@dataclass(eq=False)
class Call:
    id: uuid.UUID
    counter_info: CounterInfo
    service: ServiceInfo
    requested_at: datetime
    counter: CounterSession | None
    state: sig.CallState = sig.CallState.QUEUED
    agent: AgentSession | None = None
    agent_user_id: int | None = None
    timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    pending_to_counter: sig.Description | None = None
    pending_to_agent: sig.Description | None = None
    # The browser's trickled candidates held with ``pending_to_counter`` (its offer's).
    pending_candidates: list[sig.Candidate] = field(default_factory=list)
    trickle_ice: bool = False  # the counter takes trickled candidates (its call_request)
    # Offered only to these agents (the booked one, those on duty) while ``exclusive``.
    preferred_agents: frozenset[int] = frozenset()
    exclusive: bool = False
    appointment_id: int | None = None
    # Each party's STUN/TURN servers for this call, issued when it is answered (TURN
    # credentials of its own, expiring; calls/turn.py) and sent again on a resume.
    counter_ice_servers: list[sig.IceServer] = field(default_factory=list)
    agent_ice_servers: list[sig.IceServer] = field(default_factory=list)
    # The queue position and estimated wait last told to the counter (``call_queued``).
    told_standing: Standing | None = None

    def offered_to(self, agent: AgentSession) -> bool:
        """Whether ``agent``'s console lists this call (watchers see every call)."""
        return not self.exclusive or not agent.can_answer or agent.user_id in self.preferred_agents


@contextmanager
def call_context(call_id: uuid.UUID) -> Iterator[None]:
    token = call_id_var.set(str(call_id))
    try:
        yield
    finally:
        call_id_var.reset(token)


def error(code: str, message: str) -> sig.Error:
    return sig.Error(code=code, message=message)


def agent_label(call: Call) -> str:
    """How the counter's screen names who answered: the service, never a person's name."""
    return f"Conseiller {call.service.label}"


def standing(call: Call, waiting: Sequence[Call], agents: int) -> Standing:
    """Where ``call`` stands among its service's ``waiting`` calls (1: next) and a rough
    wait: each call ahead keeps one of the ``agents`` busy for about ``TYPICAL_CALL_S``;
    None when no agent is connected (nobody can say)."""
    ahead = sum(1 for c in waiting if c.requested_at < call.requested_at and c.id != call.id)
    if agents <= 0:
        return ahead + 1, None
    rounds = -(-ahead // agents)  # ceiling: four calls ahead, two agents: two rounds
    return ahead + 1, rounds * TYPICAL_CALL_S


def queued_message(call: Call, told: Standing | None = None) -> sig.CallQueued:
    position, estimate = told if told is not None else (None, None)
    return sig.CallQueued(
        call_id=call.id,
        service=call.service.code,
        service_label=call.service.label,
        requested_at=call.requested_at,
        position=position,
        estimated_wait_s=estimate,
    )


def taken_message(call: Call, *, by_me: bool) -> sig.CallTaken:
    """To the agent who answered, with their servers and credentials; to the others, none."""
    return sig.CallTaken(
        call_id=call.id,
        by_me=by_me,
        site=call.counter_info.site,
        counter_name=call.counter_info.name,
        ice_servers=call.agent_ice_servers if by_me else [],
        trickle_ice=call.trickle_ice and by_me,
    )


def answered_message(call: Call) -> sig.CallAnswered:
    """To the call's counter, with its servers and credentials for this call."""
    return sig.CallAnswered(
        call_id=call.id, agent_label=agent_label(call), ice_servers=call.counter_ice_servers
    )


def queue_message(service: str, waiting: Sequence[Call], missed_today: int) -> sig.Queue:
    return sig.Queue(
        service=service,
        calls=[
            sig.QueuedCall(
                call_id=c.id,
                device_id=c.counter_info.device_id,
                site=c.counter_info.site,
                counter_name=c.counter_info.name,
                requested_at=c.requested_at,
            )
            for c in sorted(waiting, key=lambda c: c.requested_at)
        ],
        missed_today=missed_today,
    )
