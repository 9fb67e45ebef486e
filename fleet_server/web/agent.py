"""The agent console (``/agent``): the page; its script ``static/agent.js`` does the rest over
``/ws/agent``. An agent sees their own service; an administrator picks one to watch.

An agent's console also lists their upcoming appointments and permanences, and gives them a
calendar feed URL (``/ical/{token}.ics``, see ``fleet_server/scheme/ical.py``) shown once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.calls import admin as calls_admin
from fleet_server.models import Device, Service, User
from fleet_server.scheme import appointments, ical
from fleet_server.scheme.schedules import local, paris_day
from fleet_server.security import audit
from fleet_server.security.roles import Role
from fleet_server.web.deps import AccessDeniedError, AgentUser, Ctx, Db, check_csrf, render
from guichet.contract import utcnow
from guichet.schedule import when_fr

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

UPCOMING_DAYS = 14  # the console lists this far ahead
HALVES = {"am": "matin", "pm": "après-midi"}


@dataclass(frozen=True, slots=True)
class AgendaItem:
    start: datetime
    when: str
    what: str
    where: str
    citizen: str  # first name or initials of an appointment; empty for a permanence


def _where(device: Device | None, site: str | None = None) -> str:
    if device is None:
        return site or "tous les guichets"
    name = device.name or device.id
    return f"{name} ({device.site})" if device.site else name


def agenda(db: Session, user_id: int, now: datetime) -> list[AgendaItem]:
    """The agent's appointments and permanences from now to ``UPCOMING_DAYS`` ahead."""
    end = now + timedelta(days=UPCOMING_DAYS)
    labels = {s.code: s.label for s in db.scalars(select(Service)).all()}
    items: list[AgendaItem] = []
    for a in appointments.agent_appointments(db, user_id, now, end):
        items.append(
            AgendaItem(
                a.start,
                when_fr(a.start, now),
                f"Rendez-vous {labels.get(a.service, a.service)}",
                _where(db.get(Device, a.device_id)),
                a.citizen_name or "",
            )
        )
    for p in appointments.agent_permanences(db, user_id, paris_day(now), paris_day(end)):
        start, stop = local(p.day, p.start_time), local(p.day, p.end_time)
        if stop <= now:
            continue
        device = db.get(Device, p.device_id) if p.device_id else None
        items.append(
            AgendaItem(
                start,
                f"{when_fr(start, now)} ({HALVES.get(p.half, p.half)})",
                f"Permanence {labels.get(p.service, p.service)}",
                _where(device, p.site),
                "",
            )
        )
    items.sort(key=lambda i: i.start)
    return items


@router.get("/agent", response_class=HTMLResponse)
def agent_console(request: Request, db: Db, user: AgentUser, service: str = "") -> Response:
    has_feed = False
    items: list[AgendaItem] = []
    if user.role == Role.AGENT:
        row = db.get(User, user.user_id)
        own = row.service or "" if row is not None else ""
        if service and service != own:
            raise AccessDeniedError("Cette console est celle d'un autre service.")
        service = own
        items = agenda(db, user.user_id, utcnow())
        has_feed = row is not None and row.ical_token_sha256 is not None
    chosen = db.get(Service, service) if service else None
    context = {
        "section": "agent",
        "service": chosen,
        "services": calls_admin.services(db),
        "watch_only": user.role != Role.AGENT,
        "ws_path": "/ws/agent"
        + (f"?service={chosen.code}" if user.role != Role.AGENT and chosen else ""),
        "agenda": items,
        "has_feed": has_feed,
    }
    response = render(request, "agent.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/agent/agenda-link", response_class=HTMLResponse)
async def new_agenda_link(
    request: Request, ctx: Ctx, user: AgentUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """A new calendar feed URL for the agent, shown once; the previous one stops working."""
    check_csrf(request, csrf_token)
    if user.role != Role.AGENT:
        raise AccessDeniedError("Le lien d'agenda est celui d'un agent.")

    def save() -> str:
        with ctx.sessions.begin() as session:
            row = session.get(User, user.user_id)
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "Utilisateur inconnu")
            audit.record(session, user.username, "ical.rotate", user.username,
                         actor_user_id=user.user_id)  # fmt: skip
            return ical.new_token(session, row)

    token = await asyncio.to_thread(save)
    url = f"{str(request.base_url).rstrip('/')}/ical/{token}.ics"
    response = render(request, "agenda_link.html", {"url": url}, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/ical/{token}.ics")
def agenda_feed(token: str, db: Db) -> Response:
    """The agent's calendar, authenticated by the secret in its URL only (404 otherwise)."""
    user = ical.user_for_token(db, token)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Agenda inconnu")
    body = ical.feed(db, user, utcnow())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, no-store"},
    )
