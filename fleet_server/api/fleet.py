"""The JSON API under ``/api/v1`` and the Prometheus ``/metrics`` endpoint.

Authentication: ``Authorization: Bearer <token>`` (``guichet fleet create-api-token``) or the
dashboard's session cookie; the user must be an admin or an auditor. Read-only for now, so
no CSRF token is involved. The OpenAPI document is at ``/api/v1/openapi.json`` and a
self-hosted reference page at ``/api/v1/docs`` (FastAPI's Swagger UI would load from a CDN).

``/metrics`` requires a bearer token too, rather than trusting loopback clients: behind a
reverse proxy on the same host every request comes from loopback. Prometheus sends one with
``authorization: {credentials: <token>}`` in its scrape config.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from fleet_server.api.responses import error_responses
from fleet_server.models import Device, User
from fleet_server.mqtt import broker_link, health, queries
from fleet_server.security.auth import principal_of
from fleet_server.web.deps import ApiUser, Ctx, Db, render, session_user
from guichet.contract import DeviceState, utcnow

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
ERRORS = {400: "Curseur invalide.", 404: "Guichet inconnu.", 422: "Paramètres invalides."}
router = APIRouter(prefix=API_PREFIX, tags=["flotte"], responses=error_responses(ERRORS, 401, 403))
metrics_router = APIRouter(include_in_schema=False)
StateName = DeviceState


class DeviceOut(BaseModel):
    """A counter as the fleet table shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    site: str
    name: str
    state: str
    state_since: datetime | None
    last_seen: datetime | None
    software_version: str | None
    cpu_temperature_c: float | None
    throttled: bool
    disk_used_pct: float | None
    load1: float | None
    camera_health: str | None
    printer_health: str | None
    printer_detail: str | None
    scanner_health: str | None
    button_health: str | None
    open_alerts: int
    service: str | None


class DevicePage(BaseModel):
    items: list[DeviceOut]
    total: int
    next_cursor: str | None
    prev_cursor: str | None


class AlertOut(BaseModel):
    id: int
    device_id: str
    site: str
    device_name: str
    kind: str
    detail: str
    raised_at: datetime
    cleared_at: datetime | None


class AlertList(BaseModel):
    open: list[AlertOut]
    cleared: list[AlertOut]


class StatusChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    state: str
    reason: str


class DeviceDetail(DeviceOut):
    last_telemetry_at: datetime | None
    telemetry_interval_s: int
    last_telemetry: dict[str, Any] | None
    alerts: AlertList
    status_history: list[StatusChangeOut]


def _alert_out(row: queries.AlertRow) -> AlertOut:
    a = row.alert
    return AlertOut(
        id=a.id,
        device_id=a.device_id,
        site=row.site,
        device_name=row.name,
        kind=a.kind,
        detail=a.detail,
        raised_at=a.raised_at,
        cleared_at=a.cleared_at,
    )


@router.get(
    "/devices",
    response_model=DevicePage,
    summary="Liste des guichets",
    description="Guichets triés par site puis identifiant, filtrables par état, site, texte "
    "et alertes ouvertes. Page suivante : repasser `next_cursor` dans `after` ; page "
    "précédente : `prev_cursor` dans `before`.",
    responses=error_responses(ERRORS, 400, 422),
)
def list_devices(
    db: Db,
    _user: ApiUser,
    state: StateName | None = None,
    site: str | None = None,
    q: Annotated[str | None, Query(max_length=queries.MAX_SEARCH_LENGTH)] = None,
    alerts_only: bool = False,
    after: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)] = queries.DEFAULT_PAGE_SIZE,
) -> DevicePage:
    """Counters ordered by site then id; follow ``next_cursor`` with ``after=``."""
    flt = queries.FleetFilter(state=state, site=site, q=q, alerts_only=alerts_only)
    try:
        page = queries.fleet_page(db, flt, after=after, before=before, limit=limit)
    except queries.BadCursorError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Curseur invalide.") from None
    return DevicePage(
        items=[DeviceOut.model_validate(d) for d in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


@router.get(
    "/devices/{device_id}",
    response_model=DeviceDetail,
    summary="Un guichet",
    description="Détail d'un guichet : dernière télémétrie, alertes ouvertes et passées, "
    "historique des états.",
    responses=error_responses(ERRORS, 404),
)
def get_device(device_id: str, db: Db, _user: ApiUser) -> DeviceDetail:
    device = db.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu.")
    open_rows, cleared_rows = queries.alerts_overview(db, device_id=device_id, cleared_limit=50)
    history = queries.status_history(db, device_id)
    return DeviceDetail(
        **DeviceOut.model_validate(device).model_dump(),
        last_telemetry_at=device.last_telemetry_at,
        telemetry_interval_s=device.telemetry_interval_s,
        last_telemetry=device.last_telemetry,
        alerts=AlertList(
            open=[_alert_out(r) for r in open_rows], cleared=[_alert_out(r) for r in cleared_rows]
        ),
        status_history=[StatusChangeOut.model_validate(h) for h in history],
    )


@router.get(
    "/alerts",
    response_model=AlertList,
    summary="Alertes ouvertes et récentes",
    description="Toutes les alertes ouvertes (les plus récentes d'abord), puis les dernières "
    "alertes levées (`cleared_limit` au plus).",
    responses=error_responses(ERRORS, 422),
)
def list_alerts(
    db: Db,
    _user: ApiUser,
    cleared_limit: Annotated[int, Query(ge=0, le=1000)] = queries.RECENT_CLEARED_ALERTS,
) -> AlertList:
    """Every open alert (newest first), then the most recently cleared ones."""
    open_rows, cleared_rows = queries.alerts_overview(db, cleared_limit=cleared_limit)
    return AlertList(
        open=[_alert_out(r) for r in open_rows], cleared=[_alert_out(r) for r in cleared_rows]
    )


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, user: Annotated[User | None, Depends(session_user)]) -> Response:
    """A plain reference of the API, rendered from its own OpenAPI document (public)."""
    schema = request.app.openapi()
    principal = principal_of(user) if user is not None else None
    context = {"schema": schema, "prefix": API_PREFIX}
    return render(request, "api_docs.html", context, principal=principal)


@metrics_router.get("/metrics")
def metrics(ctx: Ctx, db: Db, _user: ApiUser) -> Response:
    """Prometheus exposition of this server's registry; the device and alert gauges are
    refreshed on scrape as well as by the periodic health check."""
    for state, count in queries.state_counts(db).items():
        ctx.metrics.devices.labels(state=state).set(count)
    ctx.metrics.open_alerts.set(queries.open_alert_count(db))
    health.set_broker_gauge(ctx.metrics, broker_link.current(db, utcnow()))
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
