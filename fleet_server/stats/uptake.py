"""Uptake statistics per site, service and month, from the call log and the questionnaires.

Months are Europe/Paris calendar months: a call at 23:30 UTC on 31 March is on 1 April in
Paris and counts in April. Everything is aggregated by the database (GROUP BY, window
functions for the median) on SQLite and PostgreSQL alike; Python only merges a few hundred
grouped rows at most. Nothing personal comes out: no agent, no counter, no citizen — the
smallest unit is a site.

Calls: requested (all), answered (``answered_at`` set), missed (``end_reason == "missed"``),
other unanswered (abandoned, cut, or still ringing); waiting time = answered − requested
(answered calls), call length = ended − answered. Questionnaires: the three keys of
:mod:`guichet.questionnaire` — satisfaction 1…5, dealt with yes/partly/no, travel whose
``km`` (one way) is read from the answer's own questionnaire version; km avoided = 2 × km.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session

from fleet_server.models import CallRecord, QuestionnaireVersion, SurveyRecord
from guichet.questionnaire import KEY_DEALT_WITH, KEY_SATISFACTION, KEY_TRAVEL, Question
from guichet.schedule import PARIS
from guichet.signalling import EndReason

logger = logging.getLogger(__name__)

MISSED = EndReason.MISSED
SATISFACTION_LEVELS = (1, 2, 3, 4, 5)
ROUND_TRIP = 2  # the citizen would have gone there and back
SECONDS_DIGITS = 3  # SQLite's julianday() keeps milliseconds; sums are rounded to them

Key = tuple[str | None, str | None]  # (site, service); (None, None) is the total


@dataclass(frozen=True)
class StatsRow:
    """One (site, service) of one month, or the total (``site`` and ``service`` None)."""

    site: str | None
    service: str | None
    requested: int = 0
    answered: int = 0
    missed: int = 0
    wait_total_s: float = 0.0  # over the answered calls
    wait_median_s: float | None = None
    timed_calls: int = 0  # answered and ended: the calls with a length
    length_total_s: float = 0.0
    surveys: int = 0
    satisfaction_counts: tuple[int, ...] = (0, 0, 0, 0, 0)  # answers 1…5
    dealt_yes: int = 0
    dealt_partly: int = 0
    dealt_no: int = 0
    travel_answers: int = 0
    travelled: int = 0  # would otherwise have travelled (km > 0)
    km_avoided: int = 0  # round trips

    @property
    def is_total(self) -> bool:
        return self.site is None and self.service is None

    @property
    def unanswered_other(self) -> int:
        """Neither answered nor missed: abandoned before an answer, cut, or still ringing."""
        return self.requested - self.answered - self.missed

    @property
    def wait_avg_s(self) -> float | None:
        return _ratio(self.wait_total_s, self.answered, SECONDS_DIGITS)

    @property
    def length_avg_s(self) -> float | None:
        return _ratio(self.length_total_s, self.timed_calls, SECONDS_DIGITS)

    @property
    def satisfaction_answers(self) -> int:
        return sum(self.satisfaction_counts)

    @property
    def satisfaction_avg(self) -> float | None:
        weighted = sum(
            n * c for n, c in zip(SATISFACTION_LEVELS, self.satisfaction_counts, strict=True)
        )
        return _ratio(weighted, self.satisfaction_answers, 6)

    @property
    def dealt_answers(self) -> int:
        return self.dealt_yes + self.dealt_partly + self.dealt_no

    @property
    def dealt_share(self) -> float | None:
        """Share of "yes" among the answers to "was your request dealt with?" (0…1)."""
        return _ratio(self.dealt_yes, self.dealt_answers, 6)

    @property
    def partly_share(self) -> float | None:
        return _ratio(self.dealt_partly, self.dealt_answers, 6)


def _ratio(total: float, count: int, digits: int) -> float | None:
    return round(total / count, digits) if count else None


@dataclass(frozen=True)
class DayCount:
    day: date
    requested: int
    answered: int


@dataclass
class _Acc:
    """Mutable totals while merging grouped rows."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, **amounts: Any) -> None:
        for name, amount in amounts.items():
            self.values[name] = self.values.get(name, 0) + amount


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The UTC instants where ``month`` (any day in it) starts and ends in Paris."""
    start = datetime(month.year, month.month, 1, tzinfo=PARIS)
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=PARIS)
    return start.astimezone(UTC), following.astimezone(UTC)


def monthly_stats(
    session: Session, month: date, *, site: str | None = None, service: str | None = None
) -> list[StatsRow]:
    """One row per (site, service) seen in the Paris month of ``month``, then the total."""
    start, end = month_bounds(month)
    seconds = _seconds_between(session)
    call_conds = _filters(CallRecord, start, end, site, service, CallRecord.requested_at)
    survey_conds = _filters(SurveyRecord, start, end, site, service, SurveyRecord.at)
    accs: dict[Key, _Acc] = {}
    _add_calls(session, accs, call_conds, seconds)
    _add_surveys(session, accs, survey_conds)
    medians = _median_waits(session, call_conds, seconds, grouped=True)
    total_median = _median_waits(session, call_conds, seconds, grouped=False)
    rows = [_freeze(key, accs[key], medians.get(key)) for key in sorted(accs, key=_sort_key)]
    total = _Acc()
    for acc in accs.values():
        total.add(**{k: v for k, v in acc.values.items() if k != "satisfaction_counts"})
        for level, count in enumerate(acc.values.get("satisfaction_counts", ())):
            total.values.setdefault("satisfaction_counts", [0] * 5)[level] += count
    rows.append(_freeze((None, None), total, total_median.get((None, None))))
    return rows


def _sort_key(key: Key) -> tuple[str, str]:
    return (key[0] or "", key[1] or "")


def _freeze(key: Key, acc: _Acc, median: float | None) -> StatsRow:
    values = dict(acc.values)
    values["satisfaction_counts"] = tuple(values.get("satisfaction_counts", (0,) * 5))
    for name in ("wait_total_s", "length_total_s"):
        values[name] = round(float(values.get(name, 0.0)), SECONDS_DIGITS)
    return replace(StatsRow(site=key[0], service=key[1], wait_median_s=median), **values)


def _filters(
    table: type[CallRecord] | type[SurveyRecord],
    start: datetime,
    end: datetime,
    site: str | None,
    service: str | None,
    at: Any,
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [at >= start, at < end]
    if site is not None:
        conds.append(table.site == site)
    if service is not None:
        conds.append(table.service == service)
    return conds


Seconds = Callable[[Any, Any], ColumnElement[Any]]


def _seconds_between(session: Session) -> Seconds:
    """``later − earlier`` in seconds, as an SQL float expression, for this database."""
    if session.get_bind().dialect.name == "sqlite":
        return lambda later, earlier: (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return lambda later, earlier: cast(extract("epoch", later) - extract("epoch", earlier), Float)


def _add_calls(
    session: Session, accs: dict[Key, _Acc], conds: Sequence[ColumnElement[bool]], seconds: Seconds
) -> None:
    c = CallRecord
    wait = seconds(c.answered_at, c.requested_at)  # NULL when not answered
    length = seconds(c.ended_at, c.answered_at)  # NULL unless answered and ended
    missed = case((and_(c.answered_at.is_(None), c.end_reason == MISSED), 1), else_=0)
    stmt = (
        select(
            c.site,
            c.service,
            func.count(),
            func.count(c.answered_at),
            func.sum(missed),
            func.sum(wait),
            func.count(length),
            func.sum(length),
        )
        .where(*conds)
        .group_by(c.site, c.service)
    )
    for site, service, requested, answered, n_missed, waits, timed, lengths in session.execute(
        stmt
    ):
        accs.setdefault((site, service), _Acc()).add(
            requested=requested,
            answered=answered,
            missed=int(n_missed or 0),
            wait_total_s=float(waits or 0.0),
            timed_calls=timed,
            length_total_s=float(lengths or 0.0),
        )


def _median_waits(
    session: Session, conds: Sequence[ColumnElement[bool]], seconds: Seconds, *, grouped: bool
) -> dict[Key, float]:
    """The median waiting time per (site, service), or overall under the key (None, None):
    the middle row (or the mean of the two middle rows) by a window function."""
    c = CallRecord
    wait = seconds(c.answered_at, c.requested_at)
    parts = [c.site, c.service] if grouped else []
    ranked = (
        select(
            *parts,
            wait.label("wait"),
            func.row_number().over(partition_by=parts or None, order_by=wait).label("rn"),
            func.count().over(partition_by=parts or None).label("n"),
        )
        .where(*conds, c.answered_at.is_not(None))
        .subquery()
    )
    r = ranked.c
    middle = or_(r.rn == (r.n + 1) // 2, r.rn == (r.n + 2) // 2)
    keys = [r.site, r.service] if grouped else []
    stmt = select(*keys, func.avg(r.wait)).where(middle)
    if grouped:
        stmt = stmt.group_by(*keys)
    medians: dict[Key, float] = {}
    for row in session.execute(stmt):
        key: Key = (row[0], row[1]) if grouped else (None, None)
        if row[-1] is not None:
            medians[key] = round(float(row[-1]), SECONDS_DIGITS)
    return medians


def _add_surveys(
    session: Session, accs: dict[Key, _Acc], conds: Sequence[ColumnElement[bool]]
) -> None:
    """Count questionnaires grouped by their three answers (a few dozen combinations)."""
    s = SurveyRecord
    answers = (
        select(
            s.site,
            s.service,
            s.questionnaire_version.label("version"),
            s.answers[KEY_SATISFACTION].as_string().label("satisfaction"),
            s.answers[KEY_DEALT_WITH].as_string().label("dealt"),
            s.answers[KEY_TRAVEL].as_string().label("travel"),
        )
        .where(*conds)
        .subquery()
    )
    a = answers.c
    groups = [a.site, a.service, a.version, a.satisfaction, a.dealt, a.travel]
    stmt = select(*groups, func.count()).group_by(*groups)
    rows: list[tuple[Any, ...]] = [tuple(row) for row in session.execute(stmt)]
    km_of = _travel_km(session, {row[2] for row in rows})
    for site, service, version, satisfaction, dealt, travel, count in rows:
        acc = accs.setdefault((site, service), _Acc())
        acc.add(surveys=count)
        level = _level(satisfaction)
        if level is not None:
            acc.values.setdefault("satisfaction_counts", [0] * 5)[level - 1] += count
        dealt = None if dealt is None else str(dealt)
        if dealt in ("yes", "partly", "no"):
            acc.add(**{f"dealt_{dealt}": count})
        if travel is not None:
            acc.add(travel_answers=count)
            km = km_of.get(version, {}).get(str(travel))
            if km is None:
                logger.warning(
                    "travel answer without a distance",
                    extra={"questionnaire_version": version, "value": str(travel)},
                )
            elif km > 0:
                acc.add(travelled=count, km_avoided=ROUND_TRIP * km * count)


def _level(value: object) -> int | None:
    try:
        level = int(str(value))
    except ValueError:
        return None
    return level if level in SATISFACTION_LEVELS else None


def _travel_km(session: Session, versions: set[int]) -> dict[int, dict[str, int]]:
    """For each questionnaire version: travel choice value → one-way km."""
    found: dict[int, dict[str, int]] = {}
    if not versions:
        return found
    stmt = select(QuestionnaireVersion.version, QuestionnaireVersion.questions).where(
        QuestionnaireVersion.version.in_(versions)
    )
    for version, questions in session.execute(stmt):
        for raw in questions:
            if raw.get("key") == KEY_TRAVEL:
                question = Question.model_validate(raw)
                found[version] = {c.value: c.km for c in question.choices if c.km is not None}
    return found


def daily_calls(
    session: Session, month: date, *, site: str | None = None, service: str | None = None
) -> list[DayCount]:
    """Calls requested and answered per Paris day of the month (one SQL query)."""
    start, end = month_bounds(month)
    first = start.astimezone(PARIS).date()
    days: list[date] = []
    day = first
    while day.month == first.month:
        days.append(day)
        day += timedelta(days=1)
    c = CallRecord
    ends = [datetime(d.year, d.month, d.day, tzinfo=PARIS) + timedelta(days=1) for d in days]
    index = case(*((c.requested_at < e.astimezone(UTC), i) for i, e in enumerate(ends)))
    conds = _filters(c, start, end, site, service, c.requested_at)
    per_call = select(index.label("day"), c.answered_at).where(*conds).subquery()
    stmt = select(per_call.c.day, func.count(), func.count(per_call.c.answered_at)).group_by(
        per_call.c.day
    )
    counts = {i: (n, answered) for i, n, answered in session.execute(stmt)}
    return [DayCount(d, *counts.get(i, (0, 0))) for i, d in enumerate(days)]
