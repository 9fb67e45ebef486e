"""``/api/v1/timetables`` and ``/api/v1/appointments`` (read): the timetables page's
services, weekly rules, coming permanences and exceptions, and the appointments booked from
now on — with the queries the ``/admin/schedules`` and ``/reception`` pages use. Admins and
auditors. An appointment's citizen data (first name, phone) is not in the API: only the
site's reception staff need it, on their page."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.scheme import appointments
from fleet_server.scheme.schedules import paris_day, timetable
from fleet_server.web.deps import ApiUser, Db
from fleet_server.web.reception import site_devices
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["horaires"])

ERRORS = {422: "Paramètres invalides."}

# A wall-clock time in Paris, without offset: "09:30" (JSON Schema's "time" needs an offset).
WallTime = Annotated[
    time,
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "description": "HH:MM"}
    ),
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ERRORS, *codes)


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ServiceOut(_Row):
    code: str
    label: str
    phone: str | None
    appointment_minutes: int
    fallback_s: int
    position: int


class RuleOut(_Row):
    id: int
    service: str
    mode: str
    site: str | None
    device_id: str | None
    weekday: int
    start_time: WallTime
    end_time: WallTime
    valid_from: date | None
    valid_until: date | None


class PermanenceOut(_Row):
    id: int
    service: str
    site: str | None
    device_id: str | None
    day: date
    half: str
    start_time: WallTime
    end_time: WallTime
    agents: list[int]


class ExceptionOut(_Row):
    id: int
    service: str | None
    site: str | None
    device_id: str | None
    day: date
    kind: str
    start_time: WallTime | None
    end_time: WallTime | None
    note: str


class TimetableOut(BaseModel):
    services: list[ServiceOut]
    rules: list[RuleOut]
    permanences: list[PermanenceOut]
    exceptions: list[ExceptionOut]


@router.get(
    "/timetables",
    response_model=TimetableOut,
    summary="Horaires",
    description="Les services, les règles hebdomadaires (`weekday` 0 = lundi ; heures de "
    "Paris ; `mode` : `slot` accès libre, `appointment` sur rendez-vous), les permanences et "
    "exceptions à venir. Portée : tout (`site` et `device_id` nuls), un site ou un guichet.",
    responses=_errors(401, 403),
)
def timetables(db: Db, _user: ApiUser) -> TimetableOut:
    table = timetable(db, paris_day(utcnow()))
    return TimetableOut(
        services=[ServiceOut.model_validate(s) for s in table.services],
        rules=[RuleOut.model_validate(r) for r in table.rules],
        permanences=[PermanenceOut.model_validate(p) for p in table.permanences],
        exceptions=[ExceptionOut.model_validate(e) for e in table.exceptions],
    )


class AppointmentOut(_Row):
    id: int
    service: str
    device_id: str
    start: datetime
    end: datetime
    agent_user_id: int | None
    created_at: datetime
    created_by: str


@router.get(
    "/appointments",
    response_model=list[AppointmentOut],
    summary="Rendez-vous à venir",
    description="Les rendez-vous non annulés d'aujourd'hui aux trois prochains mois, par "
    "début, de tous les guichets ou de ceux d'un `site`. Sans les données du citoyen.",
    responses=_errors(401, 403, 422),
)
def list_appointments(
    db: Db, _user: ApiUser, site: Annotated[str | None, Query(max_length=128)] = None
) -> list[AppointmentOut]:
    devices = [d.id for d in site_devices(db, site)] if site is not None else None
    booked = appointments.upcoming_at(db, devices, utcnow())
    return [AppointmentOut.model_validate(a) for a in booked]
