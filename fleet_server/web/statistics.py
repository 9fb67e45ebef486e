"""The uptake statistics page (``/statistiques``) and its CSV export (``/statistiques.csv``).

Who: administrators and auditors see every site; reception staff see their own site only
(the site filter is forced to it, another site is refused). Agents have the call log
instead. Nothing personal is shown: a site is the smallest unit (no counter, no agent).

The CSV is for French spreadsheets: ``;`` between fields, UTF-8 with a byte-order mark,
decimal comma, no thousands separator; the counts behind every average are exported too,
so each figure can be recomputed exactly.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.models import Service
from fleet_server.mqtt import queries
from fleet_server.security.auth import Principal
from fleet_server.security.roles import Role
from fleet_server.stats import uptake as stats
from fleet_server.stats.uptake import StatsRow
from fleet_server.web.charts import Chart, Series, stacked_bars
from fleet_server.web.deps import AccessDeniedError, Db, FleetUser, render
from fleet_server.web.format import MISSING, month_label
from guichet.contract import utcnow
from guichet.questionnaire import FACES
from guichet.schedule import PARIS

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MONTH_PATTERN = r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"  # years a month's bounds can be computed in
TOTAL_LABEL = "Total"
NO_SERVICE_LABEL = "Non précisé"  # answers sent before counters named the call's service
NARROW_NBSP = "\u202f"  # French thousands separator
DAILY_WIDTH = 1560  # SVG units: the daily chart spans both columns, as wide as the table

Month = Annotated[str, Query(pattern=MONTH_PATTERN)]
SiteParam = Annotated[str, Query(max_length=128)]
ServiceParam = Annotated[str, Query(max_length=64)]


# --- French numbers ---------------------------------------------------------------------


def decimal_fr(value: float | None, digits: int) -> str:
    """``3,75`` — at most ``digits`` decimals, trailing zeros dropped; a dash for None."""
    if value is None:
        return MISSING
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def integer_fr(value: int) -> str:
    return f"{value:,}".replace(",", NARROW_NBSP)


def duration_fr(seconds: float | None) -> str:
    """``45 s``, ``1 min 15 s`` (to the nearest second), or a dash."""
    if seconds is None:
        return MISSING
    s = round(seconds)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def percent_fr(share: float | None) -> str:
    return MISSING if share is None else f"{decimal_fr(share * 100, 1)} %"


# --- request handling -------------------------------------------------------------------


def month_of(mois: str) -> date:
    if not mois:
        now = utcnow().astimezone(PARIS)
        return date(now.year, now.month, 1)
    year, month = mois.split("-")
    return date(int(year), int(month), 1)


def _site_scope(user: Principal, site: str) -> str | None:
    """The site filter this user may apply: reception staff always their own site."""
    if user.role == Role.RECEPTION:
        if site and site != user.site:
            raise AccessDeniedError("Ces statistiques sont celles d'un autre site.")
        return user.site
    return site or None


def _labels(session: Session) -> dict[str, str]:
    rows = session.execute(select(Service.code, Service.label).order_by(Service.position))
    return {row[0]: row[1] for row in rows}


def service_label(labels: dict[str, str], code: str | None) -> str:
    return NO_SERVICE_LABEL if code is None else labels.get(code, code)


@router.get("/statistiques", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    db: Db,
    user: FleetUser,
    mois: Month = "",
    site: SiteParam = "",
    service: ServiceParam = "",
) -> Response:
    month = month_of(mois)
    scope = _site_scope(user, site)
    rows = stats.monthly_stats(db, month, site=scope, service=service or None)
    labels = _labels(db)
    days = stats.daily_calls(db, month, site=scope, service=service or None)
    context: dict[str, Any] = {
        "section": "statistics",
        "month": month,
        "month_value": f"{month:%Y-%m}",
        "month_label": month_label(month),
        "site": scope or "",
        "service": service,
        "sites": queries.sites(db) if user.role != Role.RECEPTION else [],
        "services": labels,
        "rows": [r for r in rows if not r.is_total],
        "total": rows[-1],
        "charts": _charts(rows, labels, days),
        "service_label": lambda code: service_label(labels, code),
        "csv_query": request.url.query,
        "int_fr": integer_fr,
        "duration": duration_fr,
        "dec": decimal_fr,
        "pct": percent_fr,
    }
    response = render(request, "statistics.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/statistiques.csv")
def statistics_csv(
    db: Db, user: FleetUser, mois: Month = "", site: SiteParam = "", service: ServiceParam = ""
) -> Response:
    month = month_of(mois)
    rows = stats.monthly_stats(db, month, site=_site_scope(user, site), service=service or None)
    name = f"statistiques-{month:%Y-%m}.csv"
    return Response(
        export_csv(rows, month, _labels(db)).encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# --- CSV --------------------------------------------------------------------------------

CSV_HEADER = (
    "Mois",
    "Site",
    "Service",
    "Appels demandés",
    "Appels répondus",
    "Appels manqués",
    "Autres sans réponse",
    "Attente moyenne (s)",
    "Attente médiane (s)",
    "Durée moyenne (s)",
    "Questionnaires",
    "Satisfaction moyenne (1 à 5)",
    *(f"Satisfaction {n} ({FACES[n - 1].lower()})" for n in stats.SATISFACTION_LEVELS),
    "Traitée : oui",
    "Traitée : en partie",
    "Traitée : non",
    "Part traitée (%)",
    "Part traitée en partie (%)",
    "Réponses sur le déplacement",
    "Déplacements évités",
    "Km évités (aller-retour)",
)


def _csv_number(value: float | None, digits: int) -> str:
    return "" if value is None else decimal_fr(value, digits)


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ becomes text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(rows: list[StatsRow], month: date, labels: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        site = TOTAL_LABEL if row.is_total else _cell(row.site or "")
        service = "" if row.is_total else _cell(service_label(labels, row.service))
        share = None if row.dealt_share is None else row.dealt_share * 100
        partly = None if row.partly_share is None else row.partly_share * 100
        writer.writerow(
            [
                f"{month:%Y-%m}",
                site,
                service,
                row.requested,
                row.answered,
                row.missed,
                row.unanswered_other,
                _csv_number(row.wait_avg_s, 1),
                _csv_number(row.wait_median_s, 1),
                _csv_number(row.length_avg_s, 1),
                row.surveys,
                _csv_number(row.satisfaction_avg, 2),
                *row.satisfaction_counts,
                row.dealt_yes,
                row.dealt_partly,
                row.dealt_no,
                _csv_number(share, 1),
                _csv_number(partly, 1),
                row.travel_answers,
                row.travelled,
                row.km_avoided,
            ]
        )
    return out.getvalue()


# --- charts -----------------------------------------------------------------------------


def _charts(
    rows: list[StatsRow], labels: dict[str, str], days: list[stats.DayCount]
) -> list[Chart]:
    per_service: dict[str | None, list[int]] = {}
    for row in rows:
        if not row.is_total:
            counts = per_service.setdefault(row.service, [0, 0, 0])
            counts[0] += row.answered
            counts[1] += row.missed
            counts[2] += row.unanswered_other
    order = {code: i for i, code in enumerate(labels)}
    codes = sorted(per_service, key=lambda c: (order.get(c or "", len(order)), c or ""))
    calls = stacked_bars(
        "Appels par service",
        [service_label(labels, c) for c in codes],
        [
            Series("répondus", "answered", [per_service[c][0] for c in codes]),
            Series("manqués", "missed", [per_service[c][1] for c in codes]),
            Series("autres sans réponse", "other", [per_service[c][2] for c in codes]),
        ],
        css_class="calls",
    )
    total = rows[-1]
    satisfaction = stacked_bars(
        "Satisfaction (questionnaires)",
        list(FACES),
        [Series("réponses", "faces", list(total.satisfaction_counts))],
        css_class="satisfaction",
    )
    daily = stacked_bars(
        "Appels par jour",
        [str(d.day.day) for d in days],
        [
            Series("répondus", "answered", [d.answered for d in days]),
            Series("sans réponse", "other", [d.requested - d.answered for d in days]),
        ],
        css_class="daily",
        width=DAILY_WIDTH,
    )
    return [calls, satisfaction, daily]
