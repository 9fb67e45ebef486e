"""Appointments: free slots, booking, cancelling, and erasing the citizen's data afterwards.

A slot is ``Service.appointment_minutes`` long and lies inside one of the counter's
``appointment`` openings (the weekly windows of ``fleet_server/scheme/schedules.py``, after public
holidays and closures), starts in the future, and overlaps no live appointment of the same
counter — nor, when an agent is named, of that agent anywhere. ``book`` checks all of this
again under a row lock on the counter (and the agent), so two reception desks cannot book
the same slot.

The citizen's data is minimal (a first name or initials, an optional phone number) and is
erased by ``purge_personal_data`` ``appointment_retention_days`` after the appointment's end;
the row itself stays for the counts. Neither ever goes to the logs or the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.errors import FleetError
from fleet_server.models import Appointment, Device, Permanence, Service, User
from fleet_server.scheme.schedules import ScheduleOptions, counter_schedule, paris_day
from fleet_server.security import audit
from fleet_server.security.roles import Role
from guichet.schedule import PARIS, AccessMode

logger = logging.getLogger(__name__)

BOOKING_HORIZON_DAYS = 92  # how far ahead reception may book (a quarter)
NAME_MAX = 64  # characters of the first name or initials (the column's size)
# French numbers, loosely: 0X XX XX XX XX or +33 / 0033 X XX XX XX XX, any separators.
PHONE_RE = re.compile(r"^(?:\+33|0033|0)([1-9]\d{8})$")
PHONE_SEPARATORS = re.compile(r"[\s.\-/()]")


class BookingError(FleetError):
    """A booking that cannot be made; the message is French and shown to reception staff."""


@dataclass(frozen=True, slots=True)
class FreeSlot:
    start: datetime
    end: datetime


def normalise_phone(raw: str) -> str | None:
    """``06 12 34 56 78`` from any loose French spelling; None when empty; else refused."""
    compact = PHONE_SEPARATORS.sub("", raw.strip())
    if not compact:
        return None
    match = PHONE_RE.fullmatch(compact)
    if match is None:
        raise BookingError("Numéro de téléphone invalide (exemple : 06 12 34 56 78).")
    digits = "0" + match.group(1)
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise BookingError("Indiquez le prénom ou les initiales de la personne.")
    if len(name) > NAME_MAX:
        raise BookingError(f"Prénom ou initiales : {NAME_MAX} caractères au plus.")
    return name


def service_agents(session: Session, service: str) -> Sequence[User]:
    """The active agents of a service, by username."""
    return session.scalars(
        select(User)
        .where(User.role == Role.AGENT, User.service == service, User.active.is_(True))
        .order_by(User.username)
    ).all()


def _live_overlapping(
    session: Session, start: datetime, end: datetime, *, device_id: str | None, agent_id: int | None
) -> list[Appointment]:
    query = select(Appointment).where(
        Appointment.cancelled_at.is_(None), Appointment.start < end, Appointment.end > start
    )
    if device_id is not None:
        query = query.where(Appointment.device_id == device_id)
    if agent_id is not None:
        query = query.where(Appointment.agent_user_id == agent_id)
    return list(session.scalars(query).all())


def free_slots(
    session: Session,
    device_id: str,
    service_code: str,
    day: date,
    now: datetime,
    *,
    agent_id: int | None = None,
) -> list[FreeSlot]:
    """The bookable slots of ``service_code`` at the counter on the Paris day ``day``."""
    service = session.get(Service, service_code)
    if service is None or day < paris_day(now):
        return []
    horizon = (day - paris_day(now)).days + 2
    if horizon > BOOKING_HORIZON_DAYS + 2:
        return []
    schedule = counter_schedule(session, device_id, now, ScheduleOptions(horizon_days=horizon))
    if schedule is None:
        return []
    length = timedelta(minutes=max(1, service.appointment_minutes))
    windows = [
        o
        for o in schedule.openings
        if o.mode is AccessMode.APPOINTMENT
        and o.service == service_code
        and o.start.astimezone(PARIS).date() == day
    ]
    slots: list[FreeSlot] = []
    for window in sorted(windows, key=lambda o: o.start):
        start = window.start
        while start + length <= window.end:
            if start > now:
                slots.append(FreeSlot(start, start + length))
            start += length
    if not slots:
        return []
    first, last = slots[0].start, slots[-1].end
    taken = _live_overlapping(session, first, last, device_id=device_id, agent_id=None)
    if agent_id is not None:
        taken += _live_overlapping(session, first, last, device_id=None, agent_id=agent_id)
    return [s for s in slots if not any(a.start < s.end and a.end > s.start for a in taken)]


def book(
    session: Session,
    *,
    device_id: str,
    service: str,
    start: datetime,
    agent_id: int | None,
    citizen_name: str,
    citizen_phone: str,
    created_by: str,
    now: datetime,
) -> Appointment:
    """Book one slot; raises ``BookingError`` (French) when it cannot. The caller commits."""
    name, phone = clean_name(citizen_name), normalise_phone(citizen_phone)
    device = session.get(Device, device_id, with_for_update=True)  # serialises bookings
    if device is None:
        raise BookingError("Guichet inconnu.")
    if session.get(Service, service) is None:
        raise BookingError("Service inconnu.")
    if agent_id is not None:
        agent = session.get(User, agent_id, with_for_update=True)
        if (
            agent is None
            or not agent.active
            or agent.role != Role.AGENT
            or agent.service != service
        ):
            raise BookingError("Cet agent ne répond pas pour ce service.")
    slot = next(
        (
            s
            for s in free_slots(session, device_id, service, paris_day(start), now)
            if s.start == start
        ),
        None,
    )
    if slot is None:
        if _live_overlapping(session, start, start + timedelta(minutes=1), device_id=device_id,
                             agent_id=None):  # fmt: skip
            raise BookingError("Ce créneau est déjà réservé à ce guichet.")
        raise BookingError("Ce créneau n'est pas proposé pour ce service à ce guichet.")
    if agent_id is not None and _live_overlapping(
        session, slot.start, slot.end, device_id=None, agent_id=agent_id
    ):
        raise BookingError("Cet agent a déjà un rendez-vous à cette heure.")
    appointment = Appointment(
        service=service,
        device_id=device_id,
        start=slot.start,
        end=slot.end,
        agent_user_id=agent_id,
        citizen_name=name,
        citizen_phone=phone,
        created_at=now,
        created_by=created_by,
    )
    session.add(appointment)
    session.flush()
    logger.info(
        "appointment booked",
        extra={"appointment_id": appointment.id, "device_id": device_id, "service": service},
    )
    return appointment


def cancel(session: Session, appointment: Appointment, now: datetime) -> None:
    """Cancel a live appointment (the slot becomes free again); the caller commits."""
    if appointment.cancelled_at is not None:
        raise BookingError("Ce rendez-vous est déjà annulé.")
    appointment.cancelled_at = now
    logger.info("appointment cancelled", extra={"appointment_id": appointment.id})


def upcoming_at(
    session: Session,
    device_ids: Sequence[str] | None,
    now: datetime,
    days: int = BOOKING_HORIZON_DAYS,
) -> Sequence[Appointment]:
    """Live appointments at these counters (None: at every counter) from now on, by start."""
    if device_ids is not None and not device_ids:
        return []
    conds = [
        Appointment.cancelled_at.is_(None),
        Appointment.end > now,
        Appointment.start < now + timedelta(days=days),
    ]
    if device_ids is not None:
        conds.append(Appointment.device_id.in_(device_ids))
    return session.scalars(
        select(Appointment).where(*conds).order_by(Appointment.start, Appointment.id)
    ).all()


def agent_appointments(
    session: Session, agent_id: int, start: datetime, end: datetime, *, cancelled: bool = False
) -> Sequence[Appointment]:
    query = select(Appointment).where(
        Appointment.agent_user_id == agent_id, Appointment.end > start, Appointment.start < end
    )
    if not cancelled:
        query = query.where(Appointment.cancelled_at.is_(None))
    return session.scalars(query.order_by(Appointment.start, Appointment.id)).all()


def agent_permanences(session: Session, agent_id: int, first: date, last: date) -> list[Permanence]:
    """The agent's permanences between two days (agents are a JSON list: filtered here)."""
    rows = session.scalars(
        select(Permanence)
        .where(Permanence.day >= first, Permanence.day <= last)
        .order_by(Permanence.day, Permanence.start_time, Permanence.id)
    ).all()
    return [p for p in rows if agent_id in (p.agents or [])]


def purge_personal_data(session: Session, now: datetime, retention_days: int) -> int:
    """Erase name and phone of appointments ended ``retention_days`` ago; the caller commits."""
    cutoff = now - timedelta(days=retention_days)
    result = session.execute(
        update(Appointment)
        .where(Appointment.end <= cutoff, Appointment.personal_data_erased_at.is_(None))
        .values(citizen_name=None, citizen_phone=None, personal_data_erased_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(session, audit.SYSTEM_ACTOR, "appointment.purge", count=count)
        logger.info("appointments' personal data erased", extra={"count": count})
    return count


def purge_expired(sessions: sessionmaker[Session], now: datetime, retention_days: int) -> int:
    """``purge_personal_data`` in its own transaction (the periodic loop's entry point)."""
    with sessions.begin() as session:
        return purge_personal_data(session, now, retention_days)
