"""An agent's iCalendar feed (``/ical/{token}.ics``): their appointments and permanences.

Calendar applications send no cookie, so the feed is authenticated by a secret in its URL
alone: a random token made (or replaced) from the agent console, shown once, of which only
the SHA-256 is stored (``User.ical_token_sha256``). A wrong token answers 404, and so does the
token of a user who is no longer an active agent.

The feed holds NO citizen data — no name, no phone, not even initials. Its URL is a bearer
secret that calendar services (Google, Outlook) fetch and cache on their own servers, out
of our reach and beyond the appointments' retention period; the agent sees who they are
meeting in the console, behind their login. An event says which service, counter and site.
Cancelled appointments stay in the feed as ``STATUS:CANCELLED`` so subscribed calendars
drop them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.models import Appointment, Device, Permanence, Service, User
from fleet_server.scheme import appointments
from fleet_server.scheme.schedules import local, paris_day
from fleet_server.security.auth import token_digest
from fleet_server.security.roles import Role

logger = logging.getLogger(__name__)

ICAL_TOKEN_PREFIX = "gpi_"  # noqa: S105 - a marker, not a secret (secret scanners spot leaks)
ICAL_TOKEN_BYTES = 32  # 256 bits
PAST_DAYS = 30  # the feed reaches this far back…
AHEAD_DAYS = 92  # …and this far ahead
UID_DOMAIN = "guichet-proche"
PRODID = "-//Guichet Proche//Agenda des agents//FR"


def new_token(session: Session, user: User) -> str:
    """A fresh feed token for ``user`` (the previous URL stops working); the caller commits."""
    token = ICAL_TOKEN_PREFIX + secrets.token_urlsafe(ICAL_TOKEN_BYTES)
    user.ical_token_sha256 = token_digest(token)
    logger.info("calendar feed token created", extra={"user_id": user.id})
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(ICAL_TOKEN_PREFIX):
        return None
    user = session.scalar(select(User).where(User.ical_token_sha256 == token_digest(token)))
    # Only while its user is an active agent: a former agent's saved URL stops working.
    return user if user is not None and user.active and user.role == Role.AGENT else None


def _where(device: Device | None) -> str:
    if device is None:
        return ""
    name = device.name or device.id
    return f"{name} ({device.site})" if device.site else name


def _scope(row: Permanence, devices: dict[str, Device]) -> str:
    if row.device_id:
        return _where(devices.get(row.device_id))
    return row.site or "tous les guichets"


def feed(session: Session, user: User, now: datetime) -> bytes:
    """The iCalendar document of the agent's appointments and permanences."""
    start, end = now - timedelta(days=PAST_DAYS), now + timedelta(days=AHEAD_DAYS)
    booked: Sequence[Appointment] = appointments.agent_appointments(
        session, user.id, start, end, cancelled=True
    )
    duties = appointments.agent_permanences(session, user.id, paris_day(start), paris_day(end))
    labels = {s.code: s.label for s in session.scalars(select(Service)).all()}
    devices = {d.id: d for d in session.scalars(select(Device)).all()}
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Guichet Proche — {user.username}")
    for a in booked:
        event = Event()
        event.add("uid", f"rendez-vous-{a.id}@{UID_DOMAIN}")
        event.add("dtstamp", now)
        event.add("dtstart", a.start)
        event.add("dtend", a.end)
        event.add("summary", f"Rendez-vous {labels.get(a.service, a.service)} en visio")
        event.add("location", _where(devices.get(a.device_id)))
        event.add(
            "description", "Rendez-vous au guichet. Le prénom de l'usager est dans la console."
        )
        event.add("status", "CANCELLED" if a.cancelled_at else "CONFIRMED")
        calendar.add_component(event)
    for p in duties:
        event = Event()
        event.add("uid", f"permanence-{p.id}@{UID_DOMAIN}")
        event.add("dtstamp", now)
        event.add("dtstart", local(p.day, p.start_time))
        event.add("dtend", local(p.day, p.end_time))
        event.add("summary", f"Permanence {labels.get(p.service, p.service)}")
        event.add("location", _scope(p, devices))
        event.add("status", "CONFIRMED")
        calendar.add_component(event)
    return bytes(calendar.to_ical())
