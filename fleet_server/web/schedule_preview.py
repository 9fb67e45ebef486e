"""The timetable page's preview of one counter: what its button does now, what its screen
lists while it is closed (now, or from the moment it next closes), and its openings of the
next fifteen days — read from the same schedule the counter receives.

The closed screen's lines are computed at the moment the counter is closed: a service open
now has no "next opening" to show, and asking for one at an open moment would give the
current minute ("aujourd'hui 15 h 14").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from fleet_server.models import Device
from fleet_server.scheme.schedules import ScheduleOptions, counter_schedule, paris_day
from fleet_server.web.reception import OpeningRow, opening_rows
from guichet.schedule import (
    WALK_IN,
    CounterSchedule,
    decide,
    hour_fr,
    next_opening_lines,
    when_fr,
)

logger = logging.getLogger(__name__)

PREVIEW_DAYS = 15  # the openings listed: today and the fourteen days after


@dataclass(frozen=True, slots=True)
class Preview:
    """What the page shows of one counter at ``now``."""

    now_text: str  # "Ouvert en ce moment : Caf jusqu'à 12 h." / "Fermé en ce moment."
    closed_heading: str  # introduces ``closed_lines``; empty when the counter never closes
    closed_lines: list[str] = field(default_factory=list)
    phone: str | None = None
    rows: list[OpeningRow] = field(default_factory=list)


def counter_preview(
    db: Session, device: Device, now: datetime, options: ScheduleOptions
) -> Preview | None:
    """The preview of ``device`` at ``now`` (None: no schedule for it)."""
    wide = ScheduleOptions(PREVIEW_DAYS + 1, options.tolerance_min, options.phone)
    schedule = counter_schedule(db, device.id, now, wide)
    if schedule is None:
        return None
    rows = opening_rows([(device, schedule)], now, PREVIEW_DAYS)
    closed_at = next_closed(schedule, now)
    if closed_at is None:
        heading = f"Ouvert sans interruption pendant les {PREVIEW_DAYS} prochains jours."
        return Preview(_now_text(schedule, now), heading, rows=rows)
    if closed_at == now:
        heading = "Son écran affiche :"
    else:
        heading = f"Quand il fermera ({when_fr(closed_at, now)}), son écran affichera :"
    lines = next_opening_lines(schedule, closed_at) or ["Aucune ouverture prévue."]
    phone = schedule.contact_phone()
    return Preview(_now_text(schedule, now), heading, lines, phone, rows)


def next_closed(schedule: CounterSchedule, now: datetime) -> datetime | None:
    """The first moment from ``now`` at which the counter is closed, within its schedule."""
    if decide(schedule, now).kind == "closed":
        return now
    ends = {o.end for o in schedule.openings} | {a.end for a in schedule.appointments}
    for moment in sorted(t for t in ends if now < t < schedule.until):
        if decide(schedule, moment).kind == "closed":
            return moment
    return None


def _now_text(schedule: CounterSchedule, now: datetime) -> str:
    route = decide(schedule, now)
    if route.kind == "closed":
        return "Fermé en ce moment."
    if route.kind == "appointment" and route.appointment is not None:
        label = schedule.label(route.services[0])
        return (
            f"Rendez-vous {label} en ce moment (jusqu'à {hour_fr(route.appointment.end)}) : "
            "le bouton appelle l'agent réservé."
        )
    parts = [f"{schedule.label(code)} {_open_until(schedule, code, now)}"
             for code in route.services]  # fmt: skip
    text = "Ouvert en ce moment : " + ", ".join(parts) + "."
    if len(route.services) > 1:
        text += " Le citoyen choisit le service sur l'écran."
    return text


def _open_until(schedule: CounterSchedule, code: str, now: datetime) -> str:
    """``jusqu'à 12 h``: when the service's walk-in opening under way at ``now`` ends
    (openings that follow each other count as one)."""
    spans = sorted(
        (o.start, o.end)
        for o in schedule.openings
        if o.service == code and o.mode in WALK_IN and o.end > now
    )
    end = now
    for start, stop in spans:
        if start > end:
            break
        end = max(end, stop)
    if end >= schedule.until:
        return "en continu"
    same_day = paris_day(end) == paris_day(now)
    return f"jusqu'à {hour_fr(end) if same_day else when_fr(end, now)}"
