"""Where a counter's button call goes: the one place that decides it.

The counter's schedule (``fleet_server.scheme.schedules``) says what is open at ``now``; this module
turns it into a decision for one call request:

- an appointment booked at this counter now (within the tolerance) → its service, rung first
  to the booked agent;
- one service open to walk-ins (slot or permanence) → that service, rung first to the agents
  on duty when it is a permanence;
- several open → the citizen's choice (``CallRequest.service``), else ``choose_service``;
- a chosen service that is not open now → ``service_closed``;
- nothing open → ``closed``, whose French message lists each service's next opening and the
  phone number; a counter with no service at all → ``no_service``.

The counter runs :func:`guichet.schedule.decide` on the same schedule for its screen, so both
sides agree on what the button does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from fleet_server.models import Service
from fleet_server.scheme import schedules
from fleet_server.scheme.schedules import ScheduleOptions
from guichet.schedule import (
    CounterSchedule,
    Route,
    agents_on_duty,
    next_opening_lines,
    open_services,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Routed:
    """A call goes to ``service``; ``preferred_agents`` see it alone for ``fallback_s``."""

    service: str
    label: str
    preferred_agents: tuple[int, ...] = ()
    fallback_s: float = 0.0
    appointment_id: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """No call: ``code`` for the counter's logic, ``message`` in French for a person."""

    code: str
    message: str


def route_call(
    session: Session,
    device_id: str,
    now: datetime,
    requested: str | None = None,
    options: ScheduleOptions | None = None,
) -> Routed | Refused:
    """The decision for a call requested at ``device_id`` at ``now`` (``requested``: the
    service the citizen chose on the screen, if any)."""
    route, schedule = schedules.route(session, device_id, now, options)
    if schedule is None or not schedule.services:
        return Refused(
            "no_service", _with_phone("Aucun service n'est joignable depuis ce guichet.", schedule)
        )
    walk_in = open_services(schedule, now)
    if requested is not None:
        if route.kind == "appointment" and route.allows(requested):
            return _routed(session, requested, route.preferred_agents, route)
        if requested in walk_in:
            return _routed(session, requested, agents_on_duty(schedule, requested, now), route)
        label = schedule.label(requested)
        return Refused("service_closed", _closed_message(schedule, now, f"{label} est fermé."))
    if route.kind == "appointment":
        return _routed(session, route.services[0], route.preferred_agents, route)
    if route.kind == "open" and len(route.services) == 1:
        service = route.services[0]
        return _routed(session, service, agents_on_duty(schedule, service, now), route)
    if route.kind == "open":
        labels = ", ".join(schedule.label(s) for s in route.services)
        return Refused(
            "choose_service", f"Plusieurs services sont ouverts ({labels}) : choisissez."
        )
    return Refused("closed", _closed_message(schedule, now, "Aucun service n'est ouvert."))


def service_now(
    session: Session, device_id: str, now: datetime, options: ScheduleOptions | None = None
) -> tuple[str, str] | None:
    """(code, label) of the one service the button calls now; None if none or several."""
    route, schedule = schedules.route(session, device_id, now, options)
    if schedule is None or route.kind == "closed" or len(route.services) != 1:
        return None
    return route.services[0], schedule.label(route.services[0])


def _routed(
    session: Session, code: str, preferred: tuple[int, ...], route: Route
) -> Routed | Refused:
    service = session.get(Service, code)
    if service is None:  # removed since the schedule was read
        return Refused("no_service", "Ce service n'existe plus.")
    appointment = route.appointment if route.kind == "appointment" else None
    return Routed(
        service=service.code,
        label=service.label,
        preferred_agents=preferred,
        fallback_s=float(service.fallback_s) if preferred else 0.0,
        appointment_id=appointment.id if appointment is not None else None,
    )


def _closed_message(schedule: CounterSchedule, now: datetime, first: str) -> str:
    lines = [first, *next_opening_lines(schedule, now)]
    return _with_phone("\n".join(lines), schedule)


def _with_phone(text: str, schedule: CounterSchedule | None) -> str:
    phone = schedule.contact_phone() if schedule is not None else None
    return f"{text}\nTéléphone : {phone}" if phone else text
