"""Administrators' timetables (``/admin/schedules``): each service's settings (phone shown
when closed, appointment length, how long the booked agent rings alone, display order), the
weekly rules (walk-in slots and appointment windows), dated half-day permanences with their
agents on duty, and exceptions (closures, one-off openings) — each for every counter, one
site or one counter — with a preview of a counter's next openings and the public holidays.

Every change is audited and republishes the retained configuration of the counters it
concerns (``config_push.request_push``): one counter, a site's counters, or all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import (
    Device,
    Permanence,
    ScheduleException,
    ScheduleRule,
    Service,
    User,
)
from fleet_server.mqtt import config_push
from fleet_server.scheme.schedules import Scoped, counter_schedule, paris_day, public_holiday
from fleet_server.security import audit
from fleet_server.security.auth import Principal
from fleet_server.security.roles import Role
from fleet_server.web.deps import AdminUser, AppContext, Ctx, Db, check_csrf, render
from fleet_server.web.format import day_label, hours_label
from fleet_server.web.reception import opening_rows
from guichet.contract import utcnow
from guichet.schedule import WEEKDAYS, next_opening_lines

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

HOLIDAYS_AHEAD_DAYS = 120  # public holidays listed on the page
PERMANENCES_AHEAD_DAYS = 92  # dated rows listed (older ones are history)
HALF_DAYS = {"am": (time(9), time(12)), "pm": (time(14), time(17))}  # default hours
MODES = {"slot": "Accès libre (créneau hebdomadaire)", "appointment": "Sur rendez-vous"}
KINDS = {"closed": "Fermeture", "open": "Ouverture exceptionnelle"}

Text = Annotated[str, Form(max_length=200)]


class ScheduleFormError(FleetError):
    """A timetable form that cannot be saved; the message is French."""


def _scope(session: Session, value: str) -> tuple[str | None, str | None]:
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


def _affected(session: Session, site: str | None, device_id: str | None) -> list[str] | None:
    if device_id is not None:
        return [device_id]
    if site is not None:
        return list(session.scalars(select(Device.id).where(Device.site == site)))
    return None


def _service(session: Session, code: str, *, optional: bool = False) -> str | None:
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


def _day(value: str, what: str = "jour") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScheduleFormError(f"Date invalide ({what}).") from None


def _hours(start: str, end: str) -> tuple[time, time]:
    a, b = _time(start, "début"), _time(end, "fin")
    if b <= a:
        raise ScheduleFormError("L'heure de fin doit suivre l'heure de début.")
    return a, b


def _scope_label(site: str | None, device_id: str | None, names: dict[str, str]) -> str:
    if device_id:
        return f"Guichet {names.get(device_id, device_id)}"
    return f"Site {site}" if site else "Tous les guichets"


def _page(request: Request, db: Session, user: Principal, error: str | None = None) -> Response:
    now = utcnow()
    today = paris_day(now)
    devices = db.scalars(select(Device).order_by(Device.site, Device.name, Device.id)).all()
    names = {d.id: d.name or d.id for d in devices}
    sites = sorted({d.site for d in devices if d.site})
    services = db.scalars(select(Service).order_by(Service.position, Service.code)).all()
    agents = db.scalars(
        select(User).where(User.role == Role.AGENT).order_by(User.service, User.username)
    ).all()
    preview_id = request.query_params.get("guichet") or (devices[0].id if devices else "")
    preview_device = db.get(Device, preview_id) if preview_id else None
    preview = counter_schedule(db, preview_id, now) if preview_device is not None else None
    rules = db.scalars(
        select(ScheduleRule).order_by(
            ScheduleRule.service, ScheduleRule.weekday, ScheduleRule.start_time
        )
    ).all()
    horizon = today + timedelta(days=PERMANENCES_AHEAD_DAYS)
    permanences = db.scalars(
        select(Permanence)
        .where(Permanence.day >= today, Permanence.day <= horizon)
        .order_by(Permanence.day, Permanence.start_time)
    ).all()
    exceptions = db.scalars(
        select(ScheduleException)
        .where(ScheduleException.day >= today)
        .order_by(ScheduleException.day, ScheduleException.id)
    ).all()
    context: dict[str, Any] = {
        "section": "schedules",
        "error": error,
        "services": services,
        "labels": {s.code: s.label for s in services},
        "devices": devices,
        "sites": sites,
        "agents": agents,
        "agent_names": {a.id: a.username for a in agents},
        "rules": rules,
        "permanences": permanences,
        "exceptions": exceptions,
        "scope_label": lambda row: _scope_label(row.site, row.device_id, names),
        "weekdays": WEEKDAYS,
        "modes": MODES,
        "kinds": KINDS,
        "day_label": lambda d: day_label(d, today),
        "preview_id": preview_id,
        "preview_rows": opening_rows([(preview_device, preview)], now, 15)
        if preview_device is not None and preview is not None
        else [],
        "preview_lines": next_opening_lines(preview, now) if preview is not None else [],
        "holidays": [
            (day_label(d, today), name)
            for n in range(HOLIDAYS_AHEAD_DAYS)
            if (name := public_holiday(d := today + timedelta(days=n)))
        ],
        "hours_label": hours_label,
    }
    code = status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK
    return render(request, "schedules.html", context, principal=user, status_code=code)


@router.get("/admin/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, db: Db, user: AdminUser) -> Response:
    return _page(request, db, user)


Change = Callable[[Session], tuple[str, str, dict[str, Any], list[str] | None]]


async def _apply(request: Request, ctx: AppContext, user: Principal, change: Change) -> Response:
    """Run one change in a transaction with its audit entry, then republish the configs."""

    def save() -> list[str] | None:
        with ctx.sessions.begin() as session:
            action, target, detail, affected = change(session)
            audit.record(session, user.username, action, target, actor_user_id=user.user_id,
                         **detail)  # fmt: skip
            return affected

    try:
        affected = await asyncio.to_thread(save)
    except ScheduleFormError as exc:
        with ctx.sessions() as db:
            return _page(request, db, user, str(exc))
    config_push.request_push(ctx, affected)
    return RedirectResponse("/admin/schedules", status.HTTP_303_SEE_OTHER)


@router.post("/admin/schedules/services/{code}", response_class=HTMLResponse)
async def update_service(
    request: Request,
    code: str,
    ctx: Ctx,
    user: AdminUser,
    appointment_minutes: Annotated[int, Form(ge=5, le=240)],
    fallback_s: Annotated[int, Form(ge=0, le=600)],
    position: Annotated[int, Form(ge=0, le=1000)] = 0,
    phone: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def change(session: Session) -> tuple[str, str, dict[str, Any], list[str] | None]:
        service = session.get(Service, code)
        if service is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Service inconnu")
        service.phone = phone.strip() or None
        service.appointment_minutes = appointment_minutes
        service.fallback_s = fallback_s
        service.position = position
        detail = {"minutes": appointment_minutes, "fallback_s": fallback_s, "position": position}
        return "service.update", code, detail | {"phone": service.phone}, None

    return await _apply(request, ctx, user, change)


@router.post("/admin/schedules/rules", response_class=HTMLResponse)
async def create_rule(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    service: Annotated[str, Form(max_length=64)],
    mode: Annotated[str, Form(max_length=16)],
    scope: Text,
    weekday: Annotated[int, Form(ge=0, le=6)],
    start_time: Annotated[str, Form(max_length=8)],
    end_time: Annotated[str, Form(max_length=8)],
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def change(session: Session) -> tuple[str, str, dict[str, Any], list[str] | None]:
        if mode not in MODES:
            raise ScheduleFormError("Mode inconnu.")
        site, device_id = _scope(session, scope)
        start, end = _hours(start_time, end_time)
        first = _day(valid_from, "début de validité") if valid_from else None
        last = _day(valid_until, "fin de validité") if valid_until else None
        if first and last and last < first:
            raise ScheduleFormError("La fin de validité précède son début.")
        rule = ScheduleRule(
            service=_service(session, service), mode=mode, site=site, device_id=device_id,
            weekday=weekday, start_time=start, end_time=end, valid_from=first, valid_until=last,
        )  # fmt: skip
        session.add(rule)
        session.flush()
        detail = {"service": service, "mode": mode, "scope": scope, "weekday": weekday,
                  "hours": f"{start:%H:%M}-{end:%H:%M}"}  # fmt: skip
        return (
            "schedule.rule_create",
            f"règle {rule.id}",
            detail,
            _affected(session, site, device_id),
        )

    return await _apply(request, ctx, user, change)


@router.post("/admin/schedules/permanences", response_class=HTMLResponse)
async def create_permanence(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    service: Annotated[str, Form(max_length=64)],
    scope: Text,
    day: Annotated[str, Form(max_length=10)],
    half: Annotated[str, Form(max_length=2)],
    start_time: Annotated[str, Form(max_length=8)] = "",
    end_time: Annotated[str, Form(max_length=8)] = "",
    agents: Annotated[list[int] | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def change(session: Session) -> tuple[str, str, dict[str, Any], list[str] | None]:
        if half not in HALF_DAYS:
            raise ScheduleFormError("Demi-journée inconnue (matin ou après-midi).")
        code = _service(session, service)
        site, device_id = _scope(session, scope)
        default_start, default_end = HALF_DAYS[half]
        start, end = _hours(start_time or f"{default_start:%H:%M}",
                            end_time or f"{default_end:%H:%M}")  # fmt: skip
        on_duty = sorted(set(agents or []))
        for agent_id in on_duty:
            agent = session.get(User, agent_id)
            if agent is None or agent.role != Role.AGENT or agent.service != code:
                raise ScheduleFormError("Un des agents choisis ne répond pas pour ce service.")
        row = Permanence(
            service=code, site=site, device_id=device_id, day=_day(day), half=half,
            start_time=start, end_time=end, agents=on_duty,
        )  # fmt: skip
        session.add(row)
        session.flush()
        detail = {"service": code, "scope": scope, "day": day, "half": half, "agents": on_duty}
        target = f"permanence {row.id}"
        return "schedule.permanence_create", target, detail, _affected(session, site, device_id)

    return await _apply(request, ctx, user, change)


@router.post("/admin/schedules/exceptions", response_class=HTMLResponse)
async def create_exception(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    kind: Annotated[str, Form(max_length=16)],
    scope: Text,
    day: Annotated[str, Form(max_length=10)],
    service: Annotated[str, Form(max_length=64)] = "",
    start_time: Annotated[str, Form(max_length=8)] = "",
    end_time: Annotated[str, Form(max_length=8)] = "",
    note: Text = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def change(session: Session) -> tuple[str, str, dict[str, Any], list[str] | None]:
        if kind not in KINDS:
            raise ScheduleFormError("Type d'exception inconnu.")
        code = _service(session, service, optional=True)
        site, device_id = _scope(session, scope)
        start: time | None = None
        end: time | None = None
        if start_time or end_time:
            start, end = _hours(start_time, end_time)
        if kind == "open" and (code is None or start is None):
            raise ScheduleFormError("Une ouverture exceptionnelle a un service et des heures.")
        row = ScheduleException(
            service=code, site=site, device_id=device_id, day=_day(day), kind=kind,
            start_time=start, end_time=end, note=note.strip(),
        )  # fmt: skip
        session.add(row)
        session.flush()
        detail = {"kind": kind, "service": code, "scope": scope, "day": day}
        target = f"exception {row.id}"
        return "schedule.exception_create", target, detail, _affected(session, site, device_id)

    return await _apply(request, ctx, user, change)


DELETIONS: dict[str, tuple[Scoped, str, str]] = {
    "rules": (ScheduleRule, "schedule.rule_delete", "règle"),
    "permanences": (Permanence, "schedule.permanence_delete", "permanence"),
    "exceptions": (ScheduleException, "schedule.exception_delete", "exception"),
}


class Deletable(StrEnum):
    RULES = "rules"
    PERMANENCES = "permanences"
    EXCEPTIONS = "exceptions"


@router.post("/admin/schedules/{kind}/{row_id}/delete")
async def delete_row(
    request: Request,
    kind: Deletable,
    row_id: int,
    ctx: Ctx,
    user: AdminUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Delete a weekly rule, a permanence or an exception (the counters concerned follow)."""
    check_csrf(request, csrf_token)
    model, action, noun = DELETIONS[kind.value]

    def change(session: Session) -> tuple[str, str, dict[str, Any], list[str] | None]:
        row: Any = session.get(model, row_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Élément inconnu")
        affected = _affected(session, row.site, row.device_id)
        detail = {"service": row.service}
        session.delete(row)
        return action, f"{noun} {row_id}", detail, affected

    return await _apply(request, ctx, user, change)
