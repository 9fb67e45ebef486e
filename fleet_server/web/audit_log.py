"""The audit log (``/admin/audit``), newest first, filtered by action, author, object and day and
paged like the fleet table; and its CSV export (the whole log). For administrators and
auditors."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import admin as calls_admin
from fleet_server.security import audit
from fleet_server.web import paging
from fleet_server.web.deps import DashboardUser, Db, render
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _filter_from(request: Request) -> tuple[audit.AuditFilter, dict[str, str]]:
    """The filter the query string asks for, and the (cleaned) parameters that define it."""
    until = paging.day(request, "until")
    clean = {
        "action": paging.choice(request, "action", audit.ACTIONS),
        "actor": paging.text(request, "actor"),
        "target": paging.text(request, "target"),
        "until": until.isoformat() if until else "",
    }
    flt = audit.AuditFilter(
        action=clean["action"] or None,
        actor=clean["actor"] or None,
        target=clean["target"] or None,
        until=until,
    )
    return flt, clean


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, db: Db, user: DashboardUser) -> Response:
    flt, clean = _filter_from(request)
    page, links = paging.fetch(
        request,
        "/admin/audit",
        clean,
        lambda after, before: audit.audit_page(db, flt, after=after, before=before),
    )
    context = {
        "section": "audit",
        "page": page,
        "links": links,
        "filters": clean,
        "labels": audit.ACTIONS,
        "service_labels": {s.code: s.label for s in calls_admin.services(db)},
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
