"""One counter's page: details, latest telemetry, history charts, status history, events,
alerts and calls (with, for administrators, the service its button calls and its call token)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import admin as calls_admin
from fleet_server.calls import quality as call_quality
from fleet_server.calls import store as calls_store
from fleet_server.models import Device
from fleet_server.mqtt import actions as remote_actions
from fleet_server.mqtt import queries, uploads
from fleet_server.security.roles import Role
from fleet_server.web.charts import Chart, build_chart
from fleet_server.web.deps import AccessDeniedError, Ctx, Db, FleetUser, render, site_allowed
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

GAP_INTERVALS = 3  # telemetry intervals without a sample before a chart's line breaks
RANGES: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "24 heures"),
    "7d": (timedelta(days=7), "7 jours"),
}


def _charts(db: Db, ctx: Ctx, device: Device, span: timedelta) -> list[Chart]:
    end = utcnow()
    start = end - span
    series = queries.telemetry_series(db, device.id, start)
    gap_s = GAP_INTERVALS * device.telemetry_interval_s
    temps = [(at, temp) for at, temp, _ in series]
    loads: list[tuple[Any, float | None]] = [(at, load) for at, _, load in series]
    return [
        build_chart(
            "Température du processeur",
            "°C",
            temps,
            start,
            end,
            floor_hint=30,
            ceil_hint=70,
            threshold=ctx.settings.alert_temperature_c,
            gap_s=gap_s,
            css_class="temperature",
        ),
        build_chart(
            "Charge (moyenne sur 1 min)",
            "",
            loads,
            start,
            end,
            floor_hint=0,
            ceil_hint=1,
            digits=2,
            gap_s=gap_s,
            css_class="load",
        ),
    ]


def _peripherals(device: Device) -> list[dict[str, Any]]:
    """The latest telemetry's peripherals, flattened for display."""
    telemetry = device.last_telemetry or {}
    peripherals = telemetry.get("peripherals") or {}
    labels = {"camera": "Caméra", "printer": "Imprimante", "scanner": "Scanner", "button": "Bouton"}
    rows = []
    for key, label in labels.items():
        info = peripherals.get(key) or {}
        detail = [str(info[k]) for k in ("model", "detail") if info.get(k)]
        if info.get("reasons"):
            detail.append(", ".join(str(r) for r in info["reasons"]))
        rows.append({"label": label, "health": info.get("health"), "detail": " · ".join(detail)})
    return rows


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_page(
    request: Request,
    device_id: str,
    db: Db,
    ctx: Ctx,
    user: FleetUser,
    range: Literal["24h", "7d"] = "24h",
    events: int = 1,
) -> Response:
    device = db.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu")
    if not site_allowed(user, device.site):
        raise AccessDeniedError("Ce guichet n'est pas sur votre site.")
    open_alerts, past_alerts = queries.alerts_overview(db, device_id=device_id, cleared_limit=50)
    span, range_label = RANGES[range]
    services = calls_admin.services(db)
    listed = (
        remote_actions.recent_actions(db, device_id, utcnow()) if user.role == Role.ADMIN else []
    )
    context = {
        "device": device,
        "telemetry": device.last_telemetry or {},
        "peripherals": _peripherals(device),
        "charts": _charts(db, ctx, device, span),
        "range": range,
        "ranges": {k: label for k, (_, label) in RANGES.items()},
        "range_label": range_label,
        "history": queries.status_history(db, device_id),
        "events": queries.events_page(db, device_id, page=events),
        "open_alerts": open_alerts,
        "past_alerts": past_alerts,
        "calls": calls_store.recent_calls(db, device_id),
        "week_quality": call_quality.week_quality(db, [device_id], utcnow()).get(device_id),
        "services": services,
        "service_labels": {s.code: s.label for s in services},
        # Remote support (administrators): the latest actions and their answers.
        "actions": listed,
        "kept_files": uploads.kept_ids(db, [a.request_id for a in listed]),
    }
    return render(request, "device.html", context, principal=user)
