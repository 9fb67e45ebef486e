"""The call log in the database, written in order by one worker so the call manager never
blocks its event loop and never writes "ended" before "requested".

``CallJournal.run(fn)`` queues a function taking a ``Session``; one task runs them one after
the other in a worker thread, each in its own transaction, and returns its result.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import in_thread
from fleet_server.models import CallRecord
from fleet_server.scheme import routing
from fleet_server.scheme.schedules import ScheduleOptions
from guichet.schedule import PARIS
from guichet.signalling import EndReason

logger = logging.getLogger(__name__)

T = TypeVar("T")
RECENT_CALLS = 50  # calls shown on a counter's page


@dataclass(frozen=True)
class CounterInfo:
    """What the call manager needs to know about a counter, read once per connection."""

    device_id: str
    site: str
    name: str


@dataclass(frozen=True)
class ServiceInfo:
    code: str
    label: str


class CallJournal:
    """Runs database work for the call manager, strictly in submission order."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock()  # FIFO: waiters are woken in order

    async def run(self, fn: Callable[[Session], T]) -> T:
        async with self._lock:
            return await in_thread(self._in_transaction, fn)  # never abandoned mid-way

    def _in_transaction(self, fn: Callable[[Session], T]) -> T:
        with self._sessions.begin() as session:
            return fn(session)


# --- operations (each runs inside a transaction) -----------------------------------------


def route_call(
    device_id: str, now: datetime, requested: str | None, options: ScheduleOptions | None
) -> Callable[[Session], routing.Routed | routing.Refused]:
    def op(session: Session) -> routing.Routed | routing.Refused:
        return routing.route_call(session, device_id, now, requested, options)

    return op


def service_now(
    device_id: str, now: datetime, options: ScheduleOptions | None
) -> Callable[[Session], ServiceInfo | None]:
    def op(session: Session) -> ServiceInfo | None:
        found = routing.service_now(session, device_id, now, options)
        return ServiceInfo(*found) if found is not None else None

    return op


def call_requested(
    call_id: uuid.UUID, counter: CounterInfo, service: str, at: datetime
) -> Callable[[Session], None]:
    def op(session: Session) -> None:
        session.add(
            CallRecord(
                id=call_id,
                device_id=counter.device_id,
                site=counter.site,
                service=service,
                requested_at=at,
            )
        )

    return op


def call_answered(
    call_id: uuid.UUID, agent_user_id: int, at: datetime
) -> Callable[[Session], None]:
    def op(session: Session) -> None:
        session.execute(
            update(CallRecord)
            .where(CallRecord.id == call_id)
            .values(answered_at=at, agent_user_id=agent_user_id)
        )

    return op


def call_ended(call_id: uuid.UUID, reason: str, at: datetime) -> Callable[[Session], None]:
    def op(session: Session) -> None:
        session.execute(
            update(CallRecord)
            .where(CallRecord.id == call_id, CallRecord.ended_at.is_(None))
            .values(ended_at=at, end_reason=reason)
        )

    return op


def end_unfinished(reason: str, at: datetime) -> Callable[[Session], int]:
    """Close calls a previous process left open (it stopped without ending them)."""

    def op(session: Session) -> int:
        result = session.execute(
            update(CallRecord)
            .where(CallRecord.ended_at.is_(None))
            .values(ended_at=at, end_reason=reason)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    return op


def start_of_day(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the Pays' time zone, as an aware datetime."""
    local = now.astimezone(PARIS)
    return datetime.combine(local.date(), time(0), PARIS)


def missed_today(service: str, now: datetime) -> Callable[[Session], int]:
    def op(session: Session) -> int:
        count = session.scalar(
            select(func.count())
            .select_from(CallRecord)
            .where(
                CallRecord.service == service,
                CallRecord.end_reason == EndReason.MISSED,
                CallRecord.requested_at >= start_of_day(now),
            )
        )
        return int(count or 0)

    return op


def recent_calls(
    session: Session, device_id: str, limit: int = RECENT_CALLS
) -> Sequence[CallRecord]:
    """A counter's latest calls, newest first, for its page."""
    return session.scalars(
        select(CallRecord)
        .where(CallRecord.device_id == device_id)
        .order_by(CallRecord.requested_at.desc())
        .limit(limit)
    ).all()
