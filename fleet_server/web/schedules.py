"""Administrators' timetables (``/admin/schedules``): each service's settings (phone shown
when closed, appointment length, how long the booked agent rings alone, display order), the
weekly rules (walk-in slots and appointment windows), dated half-day permanences with their
agents on duty, and exceptions (closures, one-off openings) — each for every counter, one
site or one counter — with a preview of a counter's next openings and the public holidays.

Every change is audited and republishes the retained configuration of the counters it
concerns (``config_push.request_push``): one counter, a site's counters, or all of them.
Every form answers with a redirect to the page (``deps.redirect_to``): a refused one comes back
filled in with its message, a change is confirmed next to the rows it changed. A permanence
or an exception dated in the past is refused (it would never be listed nor take effect).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.models import (
    Device,
    Permanence,
    ScheduleException,
    ScheduleRule,
    Service,
    User,
)
from fleet_server.mqtt import config_push
from fleet_server.scheme.schedules import Scoped, local, paris_day, public_holiday, timetable
from fleet_server.security import audit
from fleet_server.security.auth import Principal
from fleet_server.security.roles import Role
from fleet_server.web import schedule_forms as forms
from fleet_server.web.deps import (
    AdminUser,
    AppContext,
    Ctx,
    Db,
    SubmittedForm,
    check_csrf,
    redirect_to,
    render,
)
from fleet_server.web.flash import FormValues
from fleet_server.web.format import day_label, hours_label
from fleet_server.web.reception import Now
from fleet_server.web.schedule_preview import counter_preview
from guichet.schedule import WEEKDAYS

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

HOLIDAYS_AHEAD_DAYS = 120  # public holidays listed on the page
HALF_DAYS = {"am": (time(9), time(12)), "pm": (time(14), time(17))}  # default hours
MODES = {"slot": "Accès libre (créneau hebdomadaire)", "appointment": "Sur rendez-vous"}
KINDS = {"closed": "Fermeture", "open": "Ouverture exceptionnelle"}
PAGE = "/admin/schedules"

Text = Annotated[str, Form(max_length=200)]


def _page(
    request: Request, db: Session, user: Principal, ctx: AppContext, now: datetime
) -> Response:
    today = paris_day(now)
    devices = db.scalars(select(Device).order_by(Device.site, Device.name, Device.id)).all()
    names = {d.id: d.name or d.id for d in devices}
    sites = sorted({d.site for d in devices if d.site})
    table = timetable(db, today)
    services = table.services
    agents = db.scalars(
        select(User).where(User.role == Role.AGENT).order_by(User.service, User.username)
    ).all()
    preview_id = request.query_params.get("guichet") or (devices[0].id if devices else "")
    preview_device = db.get(Device, preview_id) if preview_id else None
    options = config_push.schedule_options(ctx.settings)
    context: dict[str, Any] = {
        "section": "schedules",
        "services": services,
        "labels": {s.code: s.label for s in services},
        "devices": devices,
        "sites": sites,
        "agents": agents,
        "agent_names": {a.id: a.username for a in agents},
        "rules": table.rules,
        "permanences": table.permanences,
        "exceptions": table.exceptions,
        "scope_label": lambda row: forms.scope_label(row.site, row.device_id, names),
        "weekdays": WEEKDAYS,
        "modes": MODES,
        "kinds": KINDS,
        "day_label": lambda d: day_label(d, today),
        "date_words": forms.date_words,
        "preview_id": preview_id,
        "preview": counter_preview(db, preview_device, now, options) if preview_device else None,
        "holidays": [
            (day_label(d, today), name)
            for n in range(HOLIDAYS_AHEAD_DAYS)
            if (name := public_holiday(d := today + timedelta(days=n)))
        ],
        "hours_label": hours_label,
    }
    return render(request, "schedules.html", context, principal=user)


@router.get("/admin/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, db: Db, ctx: Ctx, user: AdminUser, now: Now) -> Response:
    return _page(request, db, user, ctx, now)


@dataclass(frozen=True, slots=True)
class Changed:
    """What a change did: its audit entry, the counters to republish (None: all), the
    French confirmation, and the row it made (``rule-12``) for the page to mark."""

    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    affected: list[str] | None = None
    notice: str = ""
    row: str = ""


Change = Callable[[Session], Changed]


async def _apply(
    request: Request,
    ctx: AppContext,
    user: Principal,
    change: Change,
    *,
    form: str,
    typed: FormValues,
    anchor: str = "",
) -> Response:
    """Run one change in a transaction with its audit entry, republish the configs, and go
    back to the page: to ``form`` filled in again with its error, or with the notice."""

    def save() -> Changed:
        with ctx.sessions.begin() as session:
            done = change(session)
            audit.record(session, user.username, done.action, done.target,
                         actor_user_id=user.user_id, **done.detail)  # fmt: skip
            return done

    url = f"{PAGE}#{anchor or form}"
    try:
        done = await asyncio.to_thread(save)
    except forms.ScheduleFormError as exc:
        return redirect_to(request, url, form=form, error=str(exc), values=typed)
    config_push.request_push(ctx, done.affected)
    return redirect_to(request, url, form=form, notice=done.notice, changed=done.row)


@router.post("/admin/schedules/services/{code}", response_class=HTMLResponse)
async def update_service(
    request: Request,
    code: str,
    ctx: Ctx,
    user: AdminUser,
    typed: SubmittedForm,
    appointment_minutes: Annotated[str, Form(max_length=8)] = "",
    fallback_s: Annotated[str, Form(max_length=8)] = "",
    position: Annotated[str, Form(max_length=8)] = "0",
    phone: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def change(session: Session) -> Changed:
        service = session.get(Service, code)
        if service is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Service inconnu")
        minutes = forms.number(appointment_minutes, "Durée d'un rendez-vous", 5, 240)
        alone_s = forms.number(fallback_s, "Sonnerie de l'agent réservé seul", 0, 600)
        order = forms.number(position or "0", "Ordre", 0, 1000)
        service.phone = phone.strip() or None
        service.appointment_minutes, service.fallback_s, service.position = minutes, alone_s, order
        detail = {"minutes": minutes, "fallback_s": alone_s, "position": order,
                  "phone": service.phone}  # fmt: skip
        notice = f"Réglages de {service.label} enregistrés."
        return Changed("service.update", code, detail, None, notice, f"service-{code}")

    return await _apply(
        request, ctx, user, change, form=f"service-{code}", typed=typed, anchor="services"
    )


@router.post("/admin/schedules/rules", response_class=HTMLResponse)
async def create_rule(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    typed: SubmittedForm,
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

    def change(session: Session) -> Changed:
        if mode not in MODES:
            raise forms.ScheduleFormError("Mode inconnu.")
        site, device_id = forms.scope(session, scope)
        start, end = forms.hours(start_time, end_time)
        first = forms.day(valid_from, "début de validité") if valid_from else None
        last = forms.day(valid_until, "fin de validité") if valid_until else None
        if first and last and last < first:
            raise forms.ScheduleFormError("La fin de validité précède son début.")
        code = forms.service_code(session, service)
        rule = ScheduleRule(
            service=code, mode=mode, site=site, device_id=device_id,
            weekday=weekday, start_time=start, end_time=end, valid_from=first, valid_until=last,
        )  # fmt: skip
        session.add(rule)
        session.flush()
        detail = {"service": service, "mode": mode, "scope": scope, "weekday": weekday,
                  "hours": f"{start:%H:%M}-{end:%H:%M}"}  # fmt: skip
        where = forms.scope_words(session, site, device_id)
        notice = (
            f"Plage ajoutée : {forms.label(session, code)} ({MODES[mode].lower()}), "
            f"le {WEEKDAYS[weekday]} {forms.span(start, end)}, {where}."
        )
        affected = forms.affected(session, site, device_id)
        return Changed("schedule.rule_create", f"règle {rule.id}", detail, affected, notice,
                       f"rule-{rule.id}")  # fmt: skip

    return await _apply(request, ctx, user, change, form="rules", typed=typed)


@router.post("/admin/schedules/permanences", response_class=HTMLResponse)
async def create_permanence(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    now: Now,
    typed: SubmittedForm,
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

    def change(session: Session) -> Changed:
        if half not in HALF_DAYS:
            raise forms.ScheduleFormError("Demi-journée inconnue (matin ou après-midi).")
        code = forms.service_code(session, service)
        site, device_id = forms.scope(session, scope)
        default_start, default_end = HALF_DAYS[half]
        start, end = forms.hours(start_time or f"{default_start:%H:%M}",
                            end_time or f"{default_end:%H:%M}")  # fmt: skip
        when = forms.day(day)
        if local(when, end) <= now:
            raise forms.ScheduleFormError(
                "Cette permanence serait déjà passée : choisissez une date et des heures à venir."
            )
        on_duty = sorted(set(agents or []))
        for agent_id in on_duty:
            agent = session.get(User, agent_id)
            if agent is None or agent.role != Role.AGENT or agent.service != code:
                raise forms.ScheduleFormError(
                    "Un des agents choisis ne répond pas pour ce service."
                )
        row = Permanence(
            service=code, site=site, device_id=device_id, day=when, half=half,
            start_time=start, end_time=end, agents=on_duty,
        )  # fmt: skip
        session.add(row)
        session.flush()
        detail = {"service": code, "scope": scope, "day": day, "half": half, "agents": on_duty}
        where = forms.scope_words(session, site, device_id)
        notice = (
            f"Permanence ajoutée : {forms.label(session, code)}, "
            f"le {forms.date_words(when)} {forms.span(start, end)}, {where}."
        )
        affected = forms.affected(session, site, device_id)
        return Changed("schedule.permanence_create", f"permanence {row.id}", detail, affected,
                       notice, f"permanence-{row.id}")  # fmt: skip

    return await _apply(request, ctx, user, change, form="permanences", typed=typed)


@router.post("/admin/schedules/exceptions", response_class=HTMLResponse)
async def create_exception(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    now: Now,
    typed: SubmittedForm,
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

    def change(session: Session) -> Changed:
        if kind not in KINDS:
            raise forms.ScheduleFormError("Type d'exception inconnu.")
        code = forms.service_code(session, service, optional=True)
        site, device_id = forms.scope(session, scope)
        start: time | None = None
        end: time | None = None
        if start_time or end_time:
            start, end = forms.hours(start_time, end_time)
        if kind == "open" and (code is None or start is None):
            raise forms.ScheduleFormError(
                "Une ouverture exceptionnelle a un service et des heures."
            )
        when = forms.day(day)
        if local(when, end or time.max) <= now:
            raise forms.ScheduleFormError("Cette date est passée : choisissez un jour à venir.")
        row = ScheduleException(
            service=code, site=site, device_id=device_id, day=when, kind=kind,
            start_time=start, end_time=end, note=note.strip(),
        )  # fmt: skip
        session.add(row)
        session.flush()
        detail = {"kind": kind, "service": code, "scope": scope, "day": day}
        what = forms.label(session, code) if code else "tous les services"
        hours = forms.span(start, end) if start and end else "toute la journée"
        where = forms.scope_words(session, site, device_id)
        notice = f"{KINDS[kind]} ajoutée : {what}, le {forms.date_words(when)} {hours}, {where}."
        affected = forms.affected(session, site, device_id)
        return Changed("schedule.exception_create", f"exception {row.id}", detail, affected,
                       notice, f"exception-{row.id}")  # fmt: skip

    return await _apply(request, ctx, user, change, form="exceptions", typed=typed)


DELETIONS: dict[str, tuple[Scoped, str, str]] = {
    "rules": (ScheduleRule, "schedule.rule_delete", "Plage supprimée."),
    "permanences": (Permanence, "schedule.permanence_delete", "Permanence supprimée."),
    "exceptions": (ScheduleException, "schedule.exception_delete", "Exception supprimée."),
}
NOUNS = {"rules": "règle", "permanences": "permanence", "exceptions": "exception"}


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
    typed: SubmittedForm,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Delete a weekly rule, a permanence or an exception (the counters concerned follow)."""
    check_csrf(request, csrf_token)
    model, action, notice = DELETIONS[kind.value]

    def change(session: Session) -> Changed:
        row: Any = session.get(model, row_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Élément inconnu")
        affected = forms.affected(session, row.site, row.device_id)
        detail = {"service": row.service}
        session.delete(row)
        return Changed(action, f"{NOUNS[kind.value]} {row_id}", detail, affected, notice)

    return await _apply(request, ctx, user, change, form=kind.value, typed=typed)
