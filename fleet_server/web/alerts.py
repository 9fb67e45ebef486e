"""The alerts page: the counters' open alerts (newest first) or cleared ones (most recently
cleared first), filtered by kind, site, counter or text and paged like the fleet table; and
above them the server's own alerts (a few at most)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server.mqtt import queries
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.mqtt.broker_link import SERVER_ALERT_LABELS
from fleet_server.web import paging
from fleet_server.web.deps import DashboardUser, Db, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

SERVER_ALERTS_SHOWN = 20  # the server's own alerts above the counters' (open ones first)


def _filter_from(request: Request) -> tuple[queries.AlertFilter, dict[str, str]]:
    """The filter the query string asks for, and the (cleaned) parameters that define it."""
    clean = {
        "list": paging.choice(request, "list", queries.ALERT_LISTS),
        "kind": paging.choice(request, "kind", ALERT_LABELS),
        "site": paging.text(request, "site", 128),
        "device": paging.text(request, "device"),
        "q": paging.text(request, "q"),
    }
    flt = queries.AlertFilter(
        cleared=clean["list"] == "cleared",
        kind=clean["kind"] or None,
        site=clean["site"] or None,
        device_id=clean["device"] or None,
        q=clean["q"] or None,
    )
    return flt, clean


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, db: Db, user: DashboardUser) -> Response:
    flt, clean = _filter_from(request)
    page, links = paging.fetch(
        request,
        "/alerts",
        clean,
        lambda after, before: queries.alerts_page(db, flt, after=after, before=before),
    )
    kept = {k: v for k, v in clean.items() if v and k != "list"}
    context = {
        "section": "alerts",
        "tabs": {
            "open": "/alerts?" + urlencode(kept),
            "cleared": "/alerts?" + urlencode(kept | {"list": "cleared"}),
            "unfiltered": "/alerts?" + urlencode({"list": clean["list"]} if flt.cleared else {}),
        },
        "page": page,
        "links": links,
        "filters": clean,
        "cleared": flt.cleared,
        "kinds": ALERT_LABELS,
        "sites": queries.sites(db),
        "server_alerts": queries.server_alerts(db, limit=SERVER_ALERTS_SHOWN),
        "SERVER_ALERT_LABELS": SERVER_ALERT_LABELS,
    }
    return render(request, "alerts.html", context, principal=user)
