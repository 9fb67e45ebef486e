"""A month of synthetic calls and questionnaires with known figures, for the statistics tests.

March 2025 (Paris switches to summer time on the 30th): 3 sites × 4 services; in each
(site, service) some answered calls with whole-second waits and lengths, some missed, some
abandoned or cut before an answer, and one questionnaire per answered call. ``expected``
recomputes every figure from the plan in plain Python (``statistics`` module), independently
of the SQL under test; the tests also pin a few totals as literals.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import CallRecord, Device, QuestionnaireVersion, SurveyRecord
from fleet_server.web.statistics import decimal_fr, duration_fr, integer_fr, percent_fr
from guichet.questionnaire import default_questionnaire
from guichet.schedule import PARIS

MONTH = date(2025, 3, 1)
SITES = ("Bandiat Tardoire Avenir", "Monts de Châlus", "Vallée de la Gorre")
SERVICES = ("caf", "msa", "france-travail", "carsat")
DEALT = ("yes", "partly", "no", "yes")
TRAVEL = ("no", "lt10", "10to30", "gt30")
KM_V1 = {"no": 0, "lt10": 5, "10to30": 20, "gt30": 45}  # default_questionnaire()
KM_V2 = {"no": 0, "lt10": 5, "10to30": 25, "gt30": 60}  # an edited version 2
V2_GROUP = (1, 1)  # this (site, service)'s questionnaires were answered on version 2


@dataclass(frozen=True)
class PlannedCall:
    site: str
    service: str
    requested_at: datetime
    wait_s: int | None  # None: not answered
    length_s: int | None
    end_reason: str


@dataclass(frozen=True)
class PlannedSurvey:
    site: str
    service: str
    at: datetime
    version: int
    satisfaction: int
    dealt: str
    travel: str


@dataclass
class Plan:
    calls: list[PlannedCall] = field(default_factory=list)
    surveys: list[PlannedSurvey] = field(default_factory=list)


def paris(day: int, hour: int, minute: int = 0, month: date = MONTH) -> datetime:
    return datetime(month.year, month.month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def plan() -> Plan:
    p = Plan()
    for s, site in enumerate(SITES):
        for v, service in enumerate(SERVICES):
            _plan_group(p, s, v, site, service)
    return p


def _plan_group(p: Plan, s: int, v: int, site: str, service: str) -> None:
    answered = 2 + (s + v) % 3
    for k in range(answered):
        at = paris(1 + (7 * s + 3 * v + 5 * k) % 31, 9 + k % 6, 5 * v)
        reason = "failed" if (s, v, k) == (2, 3, 0) else ("hangup_agent", "hangup_counter")[k % 2]
        p.calls.append(
            PlannedCall(site, service, at, 30 * (k + 1) + 15 * v, 240 + 90 * k + 30 * s, reason)
        )
        p.surveys.append(
            PlannedSurvey(
                site,
                service,
                at + timedelta(minutes=20),
                2 if (s, v) == V2_GROUP else 1,
                (s + v + k) % 5 + 1,
                DEALT[k % 4],
                TRAVEL[(s + k) % 4],
            )
        )
    for m in range((s + 2 * v) % 3):
        p.calls.append(
            PlannedCall(site, service, paris(2 + 9 * m + s, 14, v), None, None, "missed")
        )
    if (s + v) % 4 == 0:
        p.calls.append(PlannedCall(site, service, paris(30, 10 + s, v), None, None, "cancelled"))
    if (s, v) == (2, 3):
        p.calls.append(PlannedCall(site, service, paris(31, 16), None, None, "failed"))


def seed(sessions: sessionmaker[Session], p: Plan) -> None:
    """Counters (one per site), questionnaire version 2, and the plan's rows."""
    v2 = default_questionnaire().model_dump(mode="json")["questions"]
    for question in v2:
        for choice in question["choices"]:
            if question["key"] == "travel":
                choice["km"] = KM_V2[choice["value"]]
    with sessions.begin() as session:
        session.execute(insert(Device), [{"id": _device(s), "site": s, "name": s} for s in SITES])
        session.add(
            QuestionnaireVersion(
                version=2,
                questions=v2,
                created_at=datetime(2025, 2, 1, tzinfo=UTC),
                created_by="admin",
            )
        )
        session.execute(insert(CallRecord), [_call_row(c) for c in p.calls])
        session.execute(insert(SurveyRecord), [_survey_row(x) for x in p.surveys])


def _device(site: str) -> str:
    return "guichet-" + str(SITES.index(site))


def _call_row(c: PlannedCall) -> dict[str, Any]:
    answered = None if c.wait_s is None else c.requested_at + timedelta(seconds=c.wait_s)
    if answered is not None:
        ended = answered + timedelta(seconds=c.length_s or 0)
    else:
        ended = c.requested_at + timedelta(seconds=45)
    return {
        "id": uuid.uuid4(),
        "device_id": _device(c.site),
        "site": c.site,
        "service": c.service,
        "requested_at": c.requested_at,
        "answered_at": answered,
        "ended_at": ended,
        "end_reason": c.end_reason,
    }


def _survey_row(x: PlannedSurvey) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "device_id": _device(x.site),
        "at": x.at,
        "received_at": x.at,
        "questionnaire_version": x.version,
        "answers": {
            "satisfaction": str(x.satisfaction),
            "dealt_with": x.dealt,
            "travel": x.travel,
        },
        "service": x.service,
        "site": x.site,
    }


@dataclass(frozen=True)
class Expected:
    requested: int
    answered: int
    missed: int
    other: int
    wait_avg_s: float | None
    wait_median_s: float | None
    length_avg_s: float | None
    surveys: int
    satisfaction_avg: float | None
    dealt_yes: int
    dealt_partly: int
    dealt_answers: int
    travelled: int
    km_avoided: int


def expected(p: Plan, site: str | None = None, service: str | None = None) -> Expected:
    """The figures of the plan's calls and surveys matching the filters, in plain Python."""
    calls = [c for c in p.calls if site in (None, c.site) and service in (None, c.service)]
    surveys = [x for x in p.surveys if site in (None, x.site) and service in (None, x.service)]
    waits = [c.wait_s for c in calls if c.wait_s is not None]
    lengths = [c.length_s for c in calls if c.length_s is not None]
    sats = [x.satisfaction for x in surveys]
    km = [(KM_V2 if x.version == 2 else KM_V1)[x.travel] for x in surveys]
    return Expected(
        requested=len(calls),
        answered=len(waits),
        missed=sum(c.end_reason == "missed" for c in calls),
        other=sum(c.wait_s is None and c.end_reason != "missed" for c in calls),
        wait_avg_s=statistics.mean(waits) if waits else None,
        wait_median_s=statistics.median(waits) if waits else None,
        length_avg_s=statistics.mean(lengths) if lengths else None,
        surveys=len(surveys),
        satisfaction_avg=statistics.mean(sats) if sats else None,
        dealt_yes=sum(x.dealt == "yes" for x in surveys),
        dealt_partly=sum(x.dealt == "partly" for x in surveys),
        dealt_answers=len(surveys),
        travelled=sum(k > 0 for k in km),
        km_avoided=2 * sum(km),
    )


def shown(exp: Expected) -> dict[str, str]:
    """What the page must show for these figures, formatted the French way."""
    return {
        "requested": integer_fr(exp.requested),
        "answered": integer_fr(exp.answered),
        "missed": integer_fr(exp.missed),
        "other": integer_fr(exp.other),
        "wait_avg": duration_fr(exp.wait_avg_s),
        "wait_median": duration_fr(exp.wait_median_s),
        "length_avg": duration_fr(exp.length_avg_s),
        "surveys": integer_fr(exp.surveys),
        "satisfaction": f"{decimal_fr(exp.satisfaction_avg, 2)} / 5",
        "dealt": percent_fr(exp.dealt_yes / exp.dealt_answers),
        "partly": percent_fr(exp.dealt_partly / exp.dealt_answers),
        "travelled": integer_fr(exp.travelled),
        "km": f"{integer_fr(exp.km_avoided)} km",
    }
