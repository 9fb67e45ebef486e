"""The reception staff's page (``/reception``): their site's openings today and this week, the
counters' state, the appointments booked there, and booking or cancelling one for a citizen.

Reception staff see their own site only (``User.site``), whatever the query says; an
administrator picks a site. A counter or appointment of another site answers 404, as if it
did not exist. Booking is two plain forms (no script): choose service, counter and day, then
one of the free slots with the citizen's first name or initials and an optional phone.
Every booking and cancellation is audited without the citizen's data, and the counter's
retained configuration is republished so its screen knows about the appointment. Both forms
answer with a redirect (``deps.redirect_to``): a refused booking comes back filled in with its
message, a booking or cancellation is confirmed above the appointments it changed.

Every handler reads the time once, through the ``request_now`` dependency, so a test can
pin the page to a fixed moment (``app.dependency_overrides``) rather than the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.calls import admin as calls_admin
from fleet_server.models import Appointment, Device, User
from fleet_server.mqtt import config_push
from fleet_server.scheme import appointments
from fleet_server.scheme.schedules import (
    ScheduleOptions,
    counter_schedule,
    paris_day,
    public_holiday,
)
from fleet_server.security import audit, auth
from fleet_server.security.roles import Role
from fleet_server.web.deps import (
    AccessDeniedError,
    AppContext,
    Ctx,
    Db,
    LoginRequiredError,
    SubmittedForm,
    check_csrf,
    redirect_to,
    render,
    session_user,
)
from fleet_server.web.format import day_label, hours_label
from guichet.contract import utcnow
from guichet.schedule import ACCESS_MODE_LABELS, PARIS, CounterSchedule, day_fr, hour_fr

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

WEEK_DAYS = 7  # "this week": today and the six days after
MODE_LABELS = ACCESS_MODE_LABELS


def reception_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """Reception staff of a site, or an administrator."""
    if user is None:
        raise LoginRequiredError
    if user.role == Role.ADMIN or (user.role == Role.RECEPTION and user.site):
        return auth.principal_of(user)
    raise AccessDeniedError("Cette page est réservée à l'accueil d'un site.")


ReceptionUser = Annotated[auth.Principal, Depends(reception_principal)]


def request_now() -> datetime:
    """The moment a request is handled (UTC); overridden by tests for a fixed week."""
    return utcnow()


Now = Annotated[datetime, Depends(request_now)]


@dataclass(frozen=True, slots=True)
class OpeningRow:
    day: date
    start: datetime  # to sort by time: "9 h" comes before "14 h", unlike their text
    day_label: str
    device: str
    service: str
    mode: str
    hours: str


def when_sentence(start: datetime, end: datetime) -> str:
    """``mardi 14 janvier de 9 h à 9 h 30`` (Paris time), for a sentence."""
    return f"{day_fr(paris_day(start))} de {hour_fr(start)} à {hour_fr(end)}"


def opening_rows(
    schedules: Sequence[tuple[Device, CounterSchedule]], now: datetime, days: int
) -> list[OpeningRow]:
    """The openings of these counters from now to the end of the ``days``-th Paris day."""
    today = paris_day(now)
    last = today + timedelta(days=days - 1)
    rows: list[OpeningRow] = []
    for device, schedule in schedules:
        for o in schedule.openings:
            day = o.start.astimezone(PARIS).date() if o.start > now else today
            if day > last:
                continue
            rows.append(
                OpeningRow(
                    day=day,
                    start=o.start,
                    day_label=day_label(day, today),
                    device=device.name or device.id,
                    service=schedule.label(o.service),
                    mode=MODE_LABELS[o.mode],
                    hours=hours_label(o.start, o.end),
                )
            )
    rows.sort(key=lambda r: (r.day, r.start, r.device, r.service))
    return rows


def site_devices(db: Session, site: str) -> Sequence[Device]:
    return db.scalars(
        select(Device)
        .where(Device.site == site, Device.revoked_at.is_(None))
        .order_by(Device.name, Device.id)
    ).all()


def _sites(db: Session, user: auth.Principal) -> list[str]:
    if user.role == Role.RECEPTION:
        return [user.site or ""]
    found = db.scalars(select(Device.site).distinct().order_by(Device.site)).all()
    return [s for s in found if s]


def _chosen_site(db: Session, user: auth.Principal, asked: str) -> tuple[str, list[str]]:
    sites = _sites(db, user)
    if user.role == Role.RECEPTION:
        return sites[0], sites
    return (asked if asked in sites else (sites[0] if sites else "")), sites


def _device_of_site(db: Session, user: auth.Principal, device_id: str) -> Device:
    device = db.get(Device, device_id)
    if device is None or (user.role == Role.RECEPTION and device.site != user.site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu")
    return device


def _parse_day(value: str, today: date) -> date:
    try:
        return date.fromisoformat(value) if value else today
    except ValueError:
        return today


def _page(
    request: Request,
    db: Session,
    user: auth.Principal,
    ctx: AppContext,
    now: datetime,
    *,
    site: str = "",
    form: dict[str, str] | None = None,
) -> Response:
    today = paris_day(now)
    site, sites = _chosen_site(db, user, site)
    devices = site_devices(db, site) if site else []
    options = ScheduleOptions(
        horizon_days=WEEK_DAYS + 1,
        tolerance_min=ctx.settings.appointment_tolerance_min,
        phone=ctx.settings.closed_phone,
    )
    schedules = []
    for d in devices:
        schedule = counter_schedule(db, d.id, now, options)
        if schedule is not None:
            schedules.append((d, schedule))
    rows = opening_rows(schedules, now, WEEK_DAYS)
    form = form or {}
    services = calls_admin.services(db)
    day = _parse_day(form.get("jour", ""), today)
    chosen_device = form.get("guichet", "")
    chosen_service = form.get("service", "")
    slots: list[appointments.FreeSlot] | None = None
    agents: Sequence[User] = []
    if chosen_device in {d.id for d in devices} and chosen_service:
        slots = appointments.free_slots(db, chosen_device, chosen_service, day, now)
        agents = appointments.service_agents(db, chosen_service)
    booked = appointments.upcoming_at(db, [d.id for d in devices], now)
    agent_names = {u.id: u.username for u in db.scalars(select(User)).all()}
    holidays = [
        (day_label(today + timedelta(n), today), name)
        for n in range(WEEK_DAYS)
        if (name := public_holiday(today + timedelta(n)))
    ]
    context = {
        "section": "reception",
        "site": site,
        "sites": sites,
        "devices": devices,
        "today_rows": [r for r in rows if r.day == today],
        "week_rows": [r for r in rows if r.day != today],
        "holidays": holidays,
        "services": services,
        "labels": {s.code: s.label for s in services},
        "device_names": {d.id: d.name or d.id for d in devices},
        "form": form,
        "day": day.isoformat(),
        "min_day": today.isoformat(),
        "slots": slots,
        "agents": agents,
        "booked": booked,
        "agent_names": agent_names,
        "slot_label": lambda s: hours_label(s.start, s.end),
        "when_label": lambda a: (
            f"{day_label(paris_day(a.start), today)}, {hours_label(a.start, a.end)}"
        ),
        "when_sentence": when_sentence,
    }
    response = render(request, "reception.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"  # it shows citizens' first names
    return response


@router.get("/reception", response_class=HTMLResponse)
def reception_page(
    request: Request,
    db: Db,
    ctx: Ctx,
    user: ReceptionUser,
    now: Now,
    site: str = "",
    service: str = "",
    guichet: str = "",
    jour: str = "",
) -> Response:
    if guichet:
        _device_of_site(db, user, guichet)
    form = {"service": service, "guichet": guichet, "jour": jour}
    return _page(request, db, user, ctx, now, site=site, form=form)


def _page_url(site: str, anchor: str, **search: str) -> str:
    return f"/reception?{urlencode({'site': site, **search})}#{anchor}"


@router.post("/reception/appointments", response_class=HTMLResponse)
async def book_appointment(
    request: Request,
    ctx: Ctx,
    user: ReceptionUser,
    now: Now,
    typed: SubmittedForm,
    device_id: Annotated[str, Form(max_length=64)],
    service: Annotated[str, Form(max_length=64)],
    start: Annotated[str, Form(max_length=40)],
    citizen_name: Annotated[str, Form(max_length=200)] = "",
    citizen_phone: Annotated[str, Form(max_length=64)] = "",
    agent_id: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def save() -> tuple[str, str, str]:
        """(site, the confirmation, the new appointment's row name)."""
        with ctx.sessions.begin() as session:
            device = _device_of_site(session, user, device_id)
            try:
                at = datetime.fromisoformat(start)
                agent = int(agent_id) if agent_id else None
            except ValueError:
                raise appointments.BookingError("Créneau ou agent invalide.") from None
            if at.tzinfo is None:
                raise appointments.BookingError("Créneau invalide.")
            booked = appointments.book(
                session,
                device_id=device.id,
                service=service,
                start=at,
                agent_id=agent,
                citizen_name=citizen_name,
                citizen_phone=citizen_phone,
                created_by=user.username,
                now=now,
            )
            audit.record(
                session, user.username, "appointment.book", f"rendez-vous {booked.id}",
                actor_user_id=user.user_id, device_id=device.id, service=service,
                start=booked.start.isoformat(), agent_user_id=agent,
            )  # fmt: skip
            when = when_sentence(booked.start, booked.end)
            notice = f"Rendez-vous réservé le {when} au guichet {device.name or device.id}."
            return device.site, notice, f"appointment-{booked.id}"

    try:
        site, notice, row = await asyncio.to_thread(save)
    except appointments.BookingError as exc:  # the transaction was rolled back
        day = paris_day(datetime.fromisoformat(start)) if _aware(start) else None
        with ctx.sessions() as db:
            site = _device_of_site(db, user, device_id).site
        search = {"service": service, "guichet": device_id, "jour": day.isoformat() if day else ""}
        url = _page_url(site, "reserver", **search)
        return redirect_to(request, url, form="booking", error=str(exc), values=typed)
    config_push.request_push(ctx, [device_id])
    url = _page_url(site, "rendez-vous")
    return redirect_to(request, url, form="appointments", notice=notice, changed=row)


def _aware(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


@router.post("/reception/appointments/{appointment_id}/cancel")
async def cancel_appointment(
    request: Request,
    appointment_id: int,
    ctx: Ctx,
    user: ReceptionUser,
    now: Now,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def save() -> tuple[str, str, str]:
        """(site, counter id, the notice or the refusal); raises 404 for another site's."""
        with ctx.sessions.begin() as session:
            row = session.get(Appointment, appointment_id)
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "Rendez-vous inconnu")
            device = _device_of_site(session, user, row.device_id)
            try:
                appointments.cancel(session, row, now)
            except appointments.BookingError as exc:
                return device.site, "", str(exc)
            audit.record(
                session, user.username, "appointment.cancel", f"rendez-vous {row.id}",
                actor_user_id=user.user_id, device_id=device.id, service=row.service,
            )  # fmt: skip
            return (
                device.site,
                device.id,
                f"Rendez-vous du {when_sentence(row.start, row.end)} annulé.",
            )

    site, device_id, message = await asyncio.to_thread(save)
    url = _page_url(site, "rendez-vous")
    if not device_id:
        return redirect_to(request, url, form="appointments", error=message)
    config_push.request_push(ctx, [device_id])
    return redirect_to(request, url, form="appointments", notice=message)
