"""``/api/v1/calls`` and ``/api/v1/statistics``: the call log and the monthly uptake
figures, read with the queries the ``/calls`` and ``/statistiques`` pages use (admins and
auditors; nothing about the citizen is recorded, a site is the statistics' smallest unit)."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from fleet_server import paging
from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.calls import log as calls_log
from fleet_server.stats import uptake
from fleet_server.web.deps import ApiUser, Db
from fleet_server.web.statistics import MONTH_PATTERN, month_of

logger = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["appels"])

ERRORS = {400: "Curseur invalide.", 422: "Paramètres invalides."}
Outcome = Annotated[str | None, Query(pattern="^(" + "|".join(calls_log.OUTCOMES) + ")$")]
Text = Annotated[str | None, Query(max_length=128)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ERRORS, *codes)


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: str
    site: str
    service: str
    requested_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None = Field(description="Absent : appel en cours.")
    agent_user_id: int | None
    measured_s: float | None
    video_kbps_avg: float | None
    video_kbps_min: float | None
    loss_pct: float | None
    rtt_ms: float | None
    freezes: int | None
    frozen_s: float | None


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None
    prev_cursor: str | None


@router.get(
    "/calls",
    response_model=CallPage,
    summary="Journal des appels",
    description="Les appels, les plus récents d'abord, filtrables par service, site, guichet, "
    "issue (`end_reason`, ou `ongoing`) et jour (`until` : ce jour de Paris ou avant). Page "
    "suivante : `next_cursor` dans `after` ; précédente : `prev_cursor` dans `before`.",
    responses=_errors(400, 401, 403, 422),
)
def list_calls(
    db: Db,
    _user: ApiUser,
    service: Text = None,
    site: Text = None,
    device_id: Text = None,
    outcome: Outcome = None,
    until: date | None = None,
    after: Annotated[str | None, Query(max_length=256)] = None,
    before: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)] = paging.DEFAULT_PAGE_SIZE,
) -> CallPage:
    flt = calls_log.CallFilter(
        service=service, site=site, device_id=device_id, outcome=outcome, until=until
    )
    try:
        page = calls_log.calls_page(db, flt, after=after, before=before, limit=limit)
    except paging.BadCursorError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Curseur invalide.") from None
    return CallPage(
        items=[CallOut.model_validate(c) for c in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


class StatsRowOut(BaseModel):
    """One (site, service) of the month; the total has both ``null``."""

    site: str | None
    service: str | None
    requested: int
    answered: int
    missed: int
    unanswered_other: int
    wait_avg_s: float | None
    wait_median_s: float | None
    length_avg_s: float | None
    surveys: int
    satisfaction_counts: list[int] = Field(description="Réponses 1 à 5.")
    satisfaction_avg: float | None
    dealt_yes: int
    dealt_partly: int
    dealt_no: int
    travel_answers: int
    travelled: int
    km_avoided: int


class DayOut(BaseModel):
    day: date
    requested: int
    answered: int


class StatisticsOut(BaseModel):
    month: str
    rows: list[StatsRowOut]
    total: StatsRowOut
    days: list[DayOut]


def _row(row: uptake.StatsRow) -> StatsRowOut:
    return StatsRowOut(
        **{n: getattr(row, n) for n in StatsRowOut.model_fields if n != "satisfaction_counts"},
        satisfaction_counts=list(row.satisfaction_counts),
    )


@router.get(
    "/statistics",
    response_model=StatisticsOut,
    summary="Statistiques d'usage d'un mois",
    description="Par site et service, puis le total : appels demandés, répondus, manqués, "
    "attentes, durées, questionnaires, déplacements évités ; et les appels jour par jour. "
    "`month` : AAAA-MM (par défaut le mois en cours, heure de Paris).",
    responses=_errors(401, 403, 422),
)
def statistics(
    db: Db,
    _user: ApiUser,
    month: Annotated[str, Query(pattern=MONTH_PATTERN)] = "",
    site: Text = None,
    service: Annotated[str | None, Query(max_length=64)] = None,
) -> StatisticsOut:
    first = month_of(month)
    rows = uptake.monthly_stats(db, first, site=site, service=service)
    days = uptake.daily_calls(db, first, site=site, service=service)
    return StatisticsOut(
        month=f"{first:%Y-%m}",
        rows=[_row(r) for r in rows if not r.is_total],
        total=_row(rows[-1]),
        days=[DayOut(day=d.day, requested=d.requested, answered=d.answered) for d in days],
    )
