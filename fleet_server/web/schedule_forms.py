"""Reading the timetable page's forms (``schedules.py``): scopes, services, days and hours
checked with a French message for each mistake, and the sentences that confirm a change."""

from __future__ import annotations

import logging
from datetime import date, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import Device, Service
from guichet.schedule import day_fr

logger = logging.getLogger(__name__)


class ScheduleFormError(FleetError):
    """A timetable form that cannot be saved; the message is French."""


def scope(session: Session, value: str) -> tuple[str | None, str | None]:
    """``all`` / ``site:<name>`` / ``device:<id>`` → (site, device_id)."""
    kind, _, name = value.partition(":")
    if kind == "all" and not name:
        return None, None
    if kind == "site" and name:
        return name, None
    if kind == "device" and session.get(Device, name) is not None:
        return None, name
    raise ScheduleFormError(
        "Portée inconnue : choisissez tous les guichets, un site ou un guichet."
    )


def affected(session: Session, site: str | None, device_id: str | None) -> list[str] | None:
    if device_id is not None:
        return [device_id]
    if site is not None:
        return list(session.scalars(select(Device.id).where(Device.site == site)))
    return None


def service_code(session: Session, code: str, *, optional: bool = False) -> str | None:
    if optional and not code:
        return None
    if session.get(Service, code) is None:
        raise ScheduleFormError("Service inconnu.")
    return code


def _time(value: str, what: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ScheduleFormError(f"Heure de {what} invalide (HH:MM).") from None


def day(value: str, what: str = "jour") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScheduleFormError(f"Date invalide ({what}).") from None


def hours(start: str, end: str) -> tuple[time, time]:
    a, b = _time(start, "début"), _time(end, "fin")
    if b <= a:
        raise ScheduleFormError("L'heure de fin doit suivre l'heure de début.")
    return a, b


def scope_label(site: str | None, device_id: str | None, names: dict[str, str]) -> str:
    if device_id:
        return f"Guichet {names.get(device_id, device_id)}"
    return f"Site {site}" if site else "Tous les guichets"


def number(value: str, what: str, low: int, high: int) -> int:
    """A whole number typed in a field, within ``low``..``high``."""
    try:
        found = int(value.strip())
    except ValueError:
        raise ScheduleFormError(f"{what} : indiquez un nombre entier.") from None
    if not low <= found <= high:
        raise ScheduleFormError(f"{what} : entre {low} et {high}.")
    return found


def label(session: Session, code: str | None) -> str:
    service = session.get(Service, code) if code else None
    return service.label if service is not None else (code or "")


def span(start: time, end: time) -> str:
    """``de 9 h à 12 h 30``."""

    def hour(t: time) -> str:
        return f"{t.hour} h" if t.minute == 0 else f"{t.hour} h {t.minute:02d}"

    return f"de {hour(start)} à {hour(end)}"


def date_words(when: date) -> str:
    """``mardi 14 janvier``, ``vendredi 1er mars``."""
    return day_fr(when)


def scope_words(session: Session, site: str | None, device_id: str | None) -> str:
    """The scope inside a sentence: ``tous les guichets``, ``site X``, ``guichet Mairie X``."""
    if device_id:
        device = session.get(Device, device_id)
        return f"guichet {device.name or device.id if device else device_id}"
    return f"site {site}" if site else "tous les guichets"
