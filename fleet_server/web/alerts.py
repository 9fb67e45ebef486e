"""The alerts page: open alerts first, then the most recently cleared."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.mqtt import queries
from fleet_server.mqtt.broker_link import SERVER_ALERT_LABELS
from fleet_server.web.deps import DashboardUser, Db, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, db: Db, user: DashboardUser) -> Response:
    open_rows, cleared_rows = queries.alerts_overview(db)
    context = {
        "open_rows": open_rows,
        "cleared_rows": cleared_rows,
        "server_alerts": queries.server_alerts(db, limit=20),
        "SERVER_ALERT_LABELS": SERVER_ALERT_LABELS,
    }
    return render(request, "alerts.html", context, principal=user)
