"""The call log of one service (``/calls``): an agent sees their own service's calls only;
administrators and auditors choose the service. Nothing about the citizen is recorded."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.calls import admin as calls_admin
from fleet_server.models import CallRecord, Service
from fleet_server.security.roles import Role
from fleet_server.web.deps import AccessDeniedError, CallLogUser, Db, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

CALL_LOG_SIZE = 200  # latest calls shown


def service_calls(
    session: Session, service: str, limit: int = CALL_LOG_SIZE
) -> Sequence[CallRecord]:
    return session.scalars(
        select(CallRecord)
        .where(CallRecord.service == service)
        .order_by(CallRecord.requested_at.desc())
        .limit(limit)
    ).all()


@router.get("/calls", response_class=HTMLResponse)
def call_log(
    request: Request,
    db: Db,
    user: CallLogUser,
    service: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    if user.role == Role.AGENT:
        if service and service != user.service:
            raise AccessDeniedError("Ce journal est celui d'un autre service.")
        service = user.service or ""
    chosen = db.get(Service, service) if service else None
    context = {
        "section": "calls",
        "service": chosen,
        "services": calls_admin.services(db) if user.role != Role.AGENT else [],
        "calls": service_calls(db, chosen.code) if chosen else [],
    }
    response = render(request, "calls.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response
