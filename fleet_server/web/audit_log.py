"""The audit log (``/admin/audit``) and its CSV export, for administrators and auditors."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import admin as calls_admin
from fleet_server.security import audit
from fleet_server.web.deps import DashboardUser, Db, render
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, db: Db, user: DashboardUser) -> Response:
    context = {
        "section": "audit",
        "entries": audit.latest(db),
        "labels": audit.ACTIONS,
        "service_labels": {s.code: s.label for s in calls_admin.services(db)},
        "page_size": audit.PAGE_SIZE,
    }
    return render(request, "audit.html", context, principal=user)


@router.get("/admin/audit.csv")
def audit_csv(db: Db, _user: DashboardUser) -> Response:
    name = f"journal-audit-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(
        audit.export_csv(db),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
