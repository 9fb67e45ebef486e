"""From the administrator's rules to one counter's concrete openings (``CounterSchedule``).

Rules are Europe/Paris wall-clock times (``ScheduleRule``: weekly slots and appointment
windows; ``Permanence``: dated half-days; ``ScheduleException``: closures and one-off openings).
French public holidays are computed by the ``holidays`` package and close the weekly rules
(dated permanences and one-off openings stand: someone chose that day on purpose). Each local
day is turned into UTC intervals with ``zoneinfo``, so a Tuesday 14 h slot is 13:00 UTC in
winter and 12:00 UTC in summer, and the daylight-saving Sundays have their 23 or 25 hours.

A counter's scope: a rule for the counter itself, for its site, or for every counter (both
None). A counter with a fixed service (set on its page) has that service open at all times,
whatever the rules: for installation checks and for services that answer continuously.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from fleet_server.models import (
    Appointment,
    Device,
    Permanence,
    ScheduleException,
    ScheduleRule,
    Service,
)
from guichet.schedule import (
    DEFAULT_TOLERANCE_MIN,
    HORIZON_DAYS,
    PARIS,
    AccessMode,
    BookedAppointment,
    CounterSchedule,
    Opening,
    Route,
    ServiceInfo,
    decide,
)

logger = logging.getLogger(__name__)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class ScheduleOptions:
    horizon_days: int = HORIZON_DAYS
    tolerance_min: int = DEFAULT_TOLERANCE_MIN
    phone: str | None = None  # the general number a closed counter shows


@lru_cache(maxsize=16)
def _holidays_of(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("FR", years=year, language="fr"))


def public_holiday(day: date) -> str | None:
    """The French public holiday's name on ``day`` (metropolitan France), or None."""
    return _holidays_of(day.year).get(day)


def local(day: date, at: time) -> datetime:
    """A Paris wall-clock time on ``day`` as an aware datetime (UTC offset of that day)."""
    return datetime.combine(day, at, tzinfo=PARIS)


def paris_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


Scoped = type[ScheduleRule] | type[Permanence] | type[ScheduleException]


def in_scope(model: Scoped, device: Device) -> ColumnElement[bool]:
    """SQL condition: a row for this counter, for its site, or for every counter."""
    return or_(
        model.device_id == device.id,
        model.device_id.is_(None) & (model.site.is_(None) | (model.site == device.site)),
    )


def counter_schedule(
    session: Session, device_id: str, now: datetime, options: ScheduleOptions | None = None
) -> CounterSchedule | None:
    """The schedule of one counter from ``now`` to ``now + horizon``; None if unknown."""
    options = options or ScheduleOptions()
    device = session.get(Device, device_id)
    if device is None:
        return None
    until = now + timedelta(days=options.horizon_days)
    first, last = paris_day(now) - timedelta(days=1), paris_day(until)
    rules = session.scalars(select(ScheduleRule).where(in_scope(ScheduleRule, device))).all()
    permanences = session.scalars(
        select(Permanence).where(
            in_scope(Permanence, device), Permanence.day >= first, Permanence.day <= last
        )
    ).all()
    exceptions = session.scalars(
        select(ScheduleException).where(
            in_scope(ScheduleException, device),
            ScheduleException.day >= first,
            ScheduleException.day <= last,
        )
    ).all()
    openings: list[Opening] = []
    day = first
    while day <= last:
        openings.extend(_day_openings(day, rules, permanences, exceptions))
        day += timedelta(days=1)
    if device.service:
        openings.append(
            Opening(
                service=device.service,
                mode=AccessMode.SLOT,
                start=now - timedelta(days=1),
                end=until,
            )
        )
    openings = [o for o in openings if o.end > now and o.start < until]
    openings.sort(key=lambda o: (o.start, o.service))
    appointments = session.scalars(
        select(Appointment)
        .where(
            Appointment.device_id == device.id,
            Appointment.cancelled_at.is_(None),
            Appointment.end > now,
            Appointment.start < until,
        )
        .order_by(Appointment.start)
    ).all()
    codes = {o.service for o in openings} | {a.service for a in appointments}
    services = session.scalars(
        select(Service).where(Service.code.in_(codes)).order_by(Service.position, Service.code)
    ).all()
    return CounterSchedule(
        generated_at=now,
        until=until,
        services=[ServiceInfo(code=s.code, label=s.label, phone=s.phone) for s in services],
        openings=openings,
        appointments=[
            BookedAppointment(
                id=a.id, service=a.service, start=a.start, end=a.end, agent_id=a.agent_user_id
            )
            for a in appointments
        ],
        phone=options.phone,
        tolerance_min=options.tolerance_min,
    )


def _day_openings(
    day: date,
    rules: Sequence[ScheduleRule],
    permanences: Sequence[Permanence],
    exceptions: Sequence[ScheduleException],
) -> list[Opening]:
    holiday = public_holiday(day) is not None
    found: list[Opening] = []
    if not holiday:
        for rule in rules:
            if rule.weekday != day.weekday():
                continue
            if (rule.valid_from and day < rule.valid_from) or (
                rule.valid_until and day > rule.valid_until
            ):
                continue
            found.append(
                _opening(rule.service, AccessMode(rule.mode), day, rule.start_time, rule.end_time)
            )
    for permanence in permanences:
        if permanence.day == day:
            found.append(
                _opening(
                    permanence.service,
                    AccessMode.PERMANENCE,
                    day,
                    permanence.start_time,
                    permanence.end_time,
                    agents=list(permanence.agents or []),
                )
            )
    todays = [e for e in exceptions if e.day == day]
    for extra in todays:
        if extra.kind == "open" and extra.service and extra.start_time and extra.end_time:
            found.append(
                _opening(extra.service, AccessMode.SLOT, day, extra.start_time, extra.end_time)
            )
    closures = [e for e in todays if e.kind == "closed"]
    if not closures:
        return found
    kept: list[Opening] = []
    for opening in found:
        gaps = [
            _closure_interval(c, day)
            for c in closures
            if c.service is None or c.service == opening.service
        ]
        for start, end in _subtract((opening.start, opening.end), gaps):
            kept.append(opening.model_copy(update={"start": start, "end": end}))
    return kept


def _opening(
    service: str,
    mode: AccessMode,
    day: date,
    start: time,
    end: time,
    agents: list[int] | None = None,
) -> Opening:
    return Opening(
        service=service,
        mode=mode,
        start=local(day, start),
        end=local(day, end),
        agents=agents or [],
    )


def _closure_interval(closure: ScheduleException, day: date) -> Interval:
    if closure.start_time is None or closure.end_time is None:
        return local(day, time(0)), local(day + timedelta(days=1), time(0))
    return local(day, closure.start_time), local(day, closure.end_time)


def _subtract(interval: Interval, gaps: list[Interval]) -> list[Interval]:
    pieces = [interval]
    for gap_start, gap_end in gaps:
        next_pieces: list[Interval] = []
        for start, end in pieces:
            if gap_end <= start or gap_start >= end:
                next_pieces.append((start, end))
                continue
            if start < gap_start:
                next_pieces.append((start, gap_start))
            if gap_end < end:
                next_pieces.append((gap_end, end))
        pieces = next_pieces
    return pieces


def route(
    session: Session, device_id: str, now: datetime, options: ScheduleOptions | None = None
) -> tuple[Route, CounterSchedule | None]:
    """What the button of ``device_id`` does at ``now`` (and the schedule it was decided on)."""
    schedule = counter_schedule(session, device_id, now, options)
    if schedule is None:
        return Route("closed"), None
    return decide(schedule, now), schedule


@dataclass(frozen=True, slots=True)
class Timetable:
    """What the timetables page lists and the API returns: the services, every weekly rule,
    and the coming permanences and exceptions (from ``today`` on: past ones never apply)."""

    services: Sequence[Service]
    rules: Sequence[ScheduleRule]
    permanences: Sequence[Permanence]
    exceptions: Sequence[ScheduleException]


def timetable(session: Session, today: date) -> Timetable:
    return Timetable(
        services=session.scalars(select(Service).order_by(Service.position, Service.code)).all(),
        rules=session.scalars(
            select(ScheduleRule).order_by(
                ScheduleRule.service, ScheduleRule.weekday, ScheduleRule.start_time
            )
        ).all(),
        permanences=session.scalars(
            select(Permanence)
            .where(Permanence.day >= today)
            .order_by(Permanence.day, Permanence.start_time)
        ).all(),
        exceptions=session.scalars(
            select(ScheduleException)
            .where(ScheduleException.day >= today)
            .order_by(ScheduleException.day, ScheduleException.id)
        ).all(),
    )
