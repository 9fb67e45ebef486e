"""The fleet table (``/``) and its live fragment (``/fleet/rows``).

The page's script (``static/fleet.js``) fetches the fragment with the same query string every
``dashboard_refresh_s`` seconds and swaps the table body and the summary in place.
Reception staff see the same table restricted to their own site, whatever the query says, and
summary cards that count their own site only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import quality as call_quality
from fleet_server.mqtt import broker_link, queries
from fleet_server.security.auth import Principal
from fleet_server.security.roles import Role
from fleet_server.web import paging
from fleet_server.web.deps import Db, FleetUser, render
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _filter_from(request: Request, user: Principal) -> tuple[queries.FleetFilter, dict[str, str]]:
    """The filter the query string asks for, and the (cleaned) parameters that define it."""
    state = paging.choice(request, "state", queries.STATES)
    site = request.query_params.get("site", "").strip()
    if user.role == Role.RECEPTION:
        site = user.site or ""
    text = paging.text(request, "q")
    alerts = request.query_params.get("alerts", "") in ("1", "on", "true")
    clean = {"state": state, "site": site, "q": text, "alerts": "1" if alerts else ""}
    flt = queries.FleetFilter(
        state=state or None, site=site or None, q=text or None, alerts_only=alerts
    )
    return flt, {k: v for k, v in clean.items() if v}


def _page(request: Request, db: Db, user: Principal) -> dict[str, Any]:
    flt, clean = _filter_from(request, user)
    # Reception staff's summary cards count their own site only (no fleet-wide figures).
    own_site = (user.site or "") if user.role == Role.RECEPTION else None
    page, links = paging.fetch(
        request,
        "/",
        clean,
        lambda after, before: queries.fleet_page(db, flt, after=after, before=before),
    )
    # One aggregate query for the page's counters (never one per row).
    weak = call_quality.poor_lines(db, [d.id for d in page.items], utcnow())
    return {
        "page": page,
        "weak": weak,
        "filters": clean,
        "counts": queries.state_counts(db, own_site),
        "open_alerts": queries.open_alert_count(db, own_site),
        # Reception staff have no alerts page: their tile lists their counters with alerts.
        "alerts_url": "/?alerts=1" if own_site is not None else "/alerts",
        "broker": broker_link.current(db, utcnow()),
        "next_url": links.next_url,
        "prev_url": links.prev_url,
        "refresh_url": "/fleet/rows?" + links.query,
    }


@router.get("/", response_class=HTMLResponse)
def fleet(request: Request, db: Db, user: FleetUser) -> Response:
    sites = [user.site] if user.role == Role.RECEPTION and user.site else queries.sites(db)
    context = _page(request, db, user) | {"sites": sites, "states": queries.STATES}
    return render(request, "fleet.html", context, principal=user)


@router.get("/fleet/rows", response_class=HTMLResponse)
def fleet_rows(request: Request, db: Db, user: FleetUser) -> Response:
    response = render(request, "fleet_rows.html", _page(request, db, user), principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response
