"""The call log (``/calls``): an agent sees their own service's calls only; administrators
and auditors see every service's or choose one. Filtered by site, counter, outcome and day and
paged like the fleet table. Nothing about the citizen is recorded."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import admin as calls_admin
from fleet_server.calls import log as calls_log
from fleet_server.mqtt import queries
from fleet_server.security.auth import Principal
from fleet_server.security.roles import Role
from fleet_server.web import paging
from fleet_server.web.deps import AccessDeniedError, CallLogUser, Db, render
from fleet_server.web.format import END_REASON_LABELS

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

OUTCOME_LABELS = END_REASON_LABELS | {calls_log.ONGOING: "En cours"}


def _filter_from(request: Request, user: Principal) -> tuple[calls_log.CallFilter, dict[str, str]]:
    """The filter the query string asks for, and the (cleaned) parameters that define it.
    An agent's service is always their own; asking for another one is refused."""
    service = paging.text(request, "service")
    if user.role == Role.AGENT:
        if service and service != user.service:
            raise AccessDeniedError("Ce journal est celui d'un autre service.")
        service = user.service or ""
    until = paging.day(request, "until")
    clean = {
        "service": service,
        "site": paging.text(request, "site", 128),
        "device": paging.text(request, "device"),
        "outcome": paging.choice(request, "outcome", calls_log.OUTCOMES),
        "until": until.isoformat() if until else "",
    }
    flt = calls_log.CallFilter(
        service=service or None,
        site=clean["site"] or None,
        device_id=clean["device"] or None,
        outcome=clean["outcome"] or None,
        until=until,
    )
    return flt, clean


@router.get("/calls", response_class=HTMLResponse)
def call_log(request: Request, db: Db, user: CallLogUser) -> Response:
    flt, clean = _filter_from(request, user)
    page, links = paging.fetch(
        request,
        "/calls",
        clean,
        lambda after, before: calls_log.calls_page(db, flt, after=after, before=before),
    )
    services = calls_admin.services(db)
    context = {
        "section": "calls",
        "page": page,
        "links": links,
        "filters": clean,
        "agent": user.role == Role.AGENT,
        "service": next((s for s in services if s.code == clean["service"]), None),
        "services": services,
        "service_labels": {s.code: s.label for s in services},
        "sites": queries.sites(db),
        "outcomes": OUTCOME_LABELS,
    }
    response = render(request, "calls.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response
