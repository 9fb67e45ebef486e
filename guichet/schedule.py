"""Opening times as one counter sees them, and what its button does at a given moment.

Pure and shared: the fleet server expands its rules (weekly slots, appointment windows,
half-day permanences, public holidays, closures, one-off changes) into concrete intervals for
one counter over the next days (``fleet_server/schedules.py``) and sends them in the counter's
retained ``config`` message. Both sides then call :func:`decide` on the same data, so the
counter's screen and the server's routing agree, and the counter needs no calendar of its own.

All datetimes here are timezone-aware; they travel in UTC and are shown in Europe/Paris time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PARIS = ZoneInfo("Europe/Paris")
HORIZON_DAYS = 14  # how far ahead a counter's schedule reaches
DEFAULT_TOLERANCE_MIN = 10  # an appointment rings its agent from this long before its start


class AccessMode(StrEnum):
    APPOINTMENT = "appointment"  # a window where appointments are booked; no walk-in calls
    SLOT = "slot"  # a weekly time slot: any citizen, first come first served
    PERMANENCE = "permanence"  # a dated half-day with agents on duty


ACCESS_MODE_LABELS: dict[AccessMode, str] = {  # French, lowercase: they follow a service's name
    AccessMode.SLOT: "accès libre",
    AccessMode.PERMANENCE: "permanence",
    AccessMode.APPOINTMENT: "sur rendez-vous",
}
WALK_IN = frozenset({AccessMode.SLOT, AccessMode.PERMANENCE})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ServiceInfo(_Model):
    code: str = Field(max_length=64)
    label: str = Field(max_length=128)
    phone: str | None = Field(default=None, max_length=32)


class Opening(_Model):
    service: str = Field(max_length=64)
    mode: AccessMode
    start: AwareDatetime
    end: AwareDatetime
    agents: list[int] = Field(default_factory=list, max_length=64)  # on duty (permanence)


class BookedAppointment(_Model):
    """An appointment at this counter; no personal data ever leaves the server."""

    id: int
    service: str = Field(max_length=64)
    start: AwareDatetime
    end: AwareDatetime
    agent_id: int | None = None


class CounterSchedule(_Model):
    generated_at: AwareDatetime
    until: AwareDatetime  # nothing is known after this
    services: list[ServiceInfo] = Field(default_factory=list, max_length=64)
    openings: list[Opening] = Field(default_factory=list, max_length=2000)
    appointments: list[BookedAppointment] = Field(default_factory=list, max_length=2000)
    phone: str | None = Field(default=None, max_length=32)  # shown when nothing is open
    tolerance_min: int = Field(default=DEFAULT_TOLERANCE_MIN, ge=0, le=120)

    def contact_phone(self) -> str | None:
        """The number a closed counter gives: its own, else the first service's."""
        if self.phone:
            return self.phone
        return next((info.phone for info in self.services if info.phone), None)

    def label(self, service: str) -> str:
        for info in self.services:
            if info.code == service:
                return info.label
        return service


@dataclass(frozen=True, slots=True)
class NextOpening:
    service: str
    at: datetime | None  # None: no walk-in opening within the horizon
    by_appointment: bool  # the service has appointment windows (reached by booking)


@dataclass(frozen=True, slots=True)
class Route:
    """What the button does now.

    - ``appointment``: one service, ring ``preferred_agents`` first (the booked agent);
    - ``open``: one or more services open to walk-ins (several: the citizen chooses);
      ``preferred_agents`` holds the agents on duty when the only one is a permanence;
    - ``closed``: nothing open; ``next_openings`` says when each service opens again.
    """

    kind: Literal["appointment", "open", "closed"]
    services: tuple[str, ...] = ()
    appointment: BookedAppointment | None = None
    preferred_agents: tuple[int, ...] = ()
    next_openings: tuple[NextOpening, ...] = ()

    def allows(self, service: str) -> bool:
        return service in self.services


def decide(schedule: CounterSchedule, now: datetime) -> Route:
    """The route at ``now`` for the counter whose schedule this is."""
    early = timedelta(minutes=schedule.tolerance_min)
    due = [a for a in schedule.appointments if a.start - early <= now < a.end]
    if due:
        booked = min(due, key=lambda a: (abs((a.start - now).total_seconds()), a.id))
        agents = (booked.agent_id,) if booked.agent_id is not None else ()
        return Route("appointment", (booked.service,), booked, agents)
    services = open_services(schedule, now)
    if services:
        on_duty = agents_on_duty(schedule, services[0], now) if len(services) == 1 else ()
        return Route("open", services, preferred_agents=on_duty)
    return Route("closed", next_openings=next_openings(schedule, now))


def open_services(schedule: CounterSchedule, now: datetime) -> tuple[str, ...]:
    """The services open to walk-ins (slot or permanence) at ``now``, in display order."""
    codes = {o.service for o in schedule.openings if o.mode in WALK_IN and o.start <= now < o.end}
    return _ordered(schedule, codes)


def agents_on_duty(schedule: CounterSchedule, service: str, now: datetime) -> tuple[int, ...]:
    """The agents on duty in the service's permanence open at ``now`` (none for a slot)."""
    return tuple(
        sorted(
            {
                agent
                for o in schedule.openings
                if o.service == service
                and o.mode is AccessMode.PERMANENCE
                and o.start <= now < o.end
                for agent in o.agents
            }
        )
    )


def next_openings(schedule: CounterSchedule, now: datetime) -> tuple[NextOpening, ...]:
    """For each service of the counter, its next walk-in opening after ``now``."""
    found: list[NextOpening] = []
    for code in _ordered(schedule, {info.code for info in schedule.services}):
        mine = [o for o in schedule.openings if o.service == code]
        starts = [o.start for o in mine if o.mode in WALK_IN and o.end > now]
        by_appointment = any(o.mode is AccessMode.APPOINTMENT for o in mine)
        at = max(min(starts), now) if starts else None
        if at is not None or by_appointment:
            found.append(NextOpening(code, at, by_appointment))
    return tuple(found)


def _ordered(schedule: CounterSchedule, codes: set[str]) -> tuple[str, ...]:
    order = {info.code: i for i, info in enumerate(schedule.services)}
    return tuple(sorted(codes, key=lambda c: (order.get(c, len(order)), c)))


# --- French wording ----------------------------------------------------------------------

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def day_of_month_fr(number: int) -> str:
    """``1er``, ``2``, ``31``: French writes the first of the month as an ordinal."""
    return "1er" if number == 1 else str(number)


def day_fr(day: date, *, year: bool = False) -> str:
    """``lundi 1er janvier``, ``mardi 2 janvier`` (``… 2025`` with ``year``)."""
    text = f"{WEEKDAYS[day.weekday()]} {day_of_month_fr(day.day)} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def hour_fr(moment: datetime) -> str:
    """``14 h`` or ``9 h 30`` in Paris time."""
    local = moment.astimezone(PARIS)
    return f"{local.hour} h" if local.minute == 0 else f"{local.hour} h {local.minute:02d}"


def when_fr(moment: datetime, now: datetime) -> str:
    """``aujourd'hui 14 h``, ``demain 9 h 30``, ``mardi 14 h`` or ``lundi 12 janvier 14 h``."""
    local, today = moment.astimezone(PARIS), now.astimezone(PARIS).date()
    days = (local.date() - today).days
    if days <= 0:
        day = "aujourd'hui"
    elif days == 1:
        day = "demain"
    elif days < 7:
        day = WEEKDAYS[local.weekday()]
    else:
        day = day_fr(local.date())
    return f"{day} {hour_fr(moment)}"


def next_opening_lines(schedule: CounterSchedule, now: datetime) -> list[str]:
    """What a closed counter's screen lists: ``Caf : mardi 14 h``, ``Carsat : sur rendez-vous``."""
    lines: list[str] = []
    for item in next_openings(schedule, now):
        label = schedule.label(item.service)
        if item.at is not None:
            lines.append(f"{label} : {when_fr(item.at, now)}")
        else:
            lines.append(f"{label} : sur rendez-vous")
    return lines
