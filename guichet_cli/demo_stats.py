"""A few weeks of plausible calls and questionnaire answers, so that the demo's statistics
page shows what it is for (issue 17: on a fresh demo ``/statistiques`` was empty).

Demo data, and marked as such without a schema change: every seeded call and answer has a
version-5 UUID made in ``DEMO_NAMESPACE`` from its counter, day and rank, while counters give
real calls and answers random (version-4) ids — ``is_demo_id`` tells them apart. The same
day gives the same ids and the same figures (a random generator seeded by counter and day),
so seeding again at the next start adds only the days since. Only the ``SEED_DAYS`` days
before today are seeded: today's calls are the ones you make.

Plausible: calls come when the demo's timetable opens a service at the counter (Caf walk-in
slots, MSA and Carsat appointment windows everywhere, France Travail permanences at Monts de
Châlus), never on a public holiday; most are answered within a few minutes and last a quarter
of an hour, some ring out (missed), a few are given up; most answered calls get an answer to
the questionnaire, mostly satisfied. Nothing personal, as in real rows.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fleet_server.models import CallRecord, SurveyRecord, User
from fleet_server.scheme.schedules import public_holiday
from guichet.questionnaire import KEY_DEALT_WITH, KEY_SATISFACTION, KEY_TRAVEL
from guichet.schedule import PARIS
from guichet.signalling import EndReason
from guichet_cli.demo_scheme import (
    APPOINTMENT_WINDOWS,
    CAF_SLOTS,
    COUNTERS,
    PERMANENCE_WEEKDAYS,
    DemoCounter,
    agent_login,
)

DEMO_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-4e59-9a0c-8d2f5e6b7a91")  # the demo's seeded rows
SEED_DAYS = 42  # six weeks: this month and the last one both have figures
QUESTIONNAIRE_VERSION = 1  # the shipped questionnaire (migration 0004): its keys and km
RING_TIMEOUT_S = 120  # the server's default: a missed call rang this long
# Calls per opening (a half-day at one counter): walk-in slots draw more than appointments.
CALLS_PER_OPENING = {"slot": (1, 4), "appointment": (0, 2), "permanence": (1, 3)}
ANSWERED, MISSED = 0.84, 0.10  # the rest: given up while waiting
WAIT_S, LENGTH_S = (20, 240), (240, 1_200)
SURVEYED = 0.7  # answered calls whose citizen answers the questionnaire
DEALT = {"yes": 70, "partly": 20, "no": 10}  # weights
SATISFACTION = {"1": 3, "2": 5, "3": 12, "4": 35, "5": 45}
TRAVEL = {"no": 15, "lt10": 30, "10to30": 40, "gt30": 15}
HANGUP = {EndReason.HANGUP_AGENT: 60, EndReason.HANGUP_COUNTER: 36, EndReason.FAILED: 4}


def is_demo_id(row_id: uuid.UUID) -> bool:
    """A seeded row: counters never make version-5 ids."""
    return row_id.version == 5


@dataclass(frozen=True)
class Opening:
    service: str
    mode: str  # "slot", "appointment", "permanence"
    start: time
    end: time


def openings(counter: DemoCounter, day: date) -> list[Opening]:
    """The demo timetable's openings at ``counter`` on ``day`` (holidays aside)."""
    weekday = day.weekday()
    found = [Opening("caf", "slot", time(s), time(e)) for d, s, e in CAF_SLOTS if d == weekday]
    found += [
        Opening(service, "appointment", time(s), time(e))
        for service, d, s, e in APPOINTMENT_WINDOWS
        if d == weekday
    ]
    if counter.service == "france-travail" and weekday in PERMANENCE_WEEKDAYS:
        found.append(Opening("france-travail", "permanence", time(9), time(12)))
    return found


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _day_rows(
    counter: DemoCounter, day: date, agents: dict[str, int | None]
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """One counter's calls of one day, each with its questionnaire answer (or None)."""
    rng = random.Random(f"{counter.device_id}/{day.isoformat()}")
    rank = 0
    for opening in openings(counter, day):
        low, high = CALLS_PER_OPENING[opening.mode]
        start = datetime.combine(day, opening.start, tzinfo=PARIS)
        span_s = (datetime.combine(day, opening.end, tzinfo=PARIS) - start).total_seconds()
        for _ in range(rng.randint(low, high)):
            rank += 1
            requested = (start + timedelta(seconds=rng.uniform(0, span_s - 1800))).astimezone(UTC)
            call = _call(rng, counter, opening.service, requested, agents)
            call["id"] = uuid.uuid5(DEMO_NAMESPACE, f"call/{counter.device_id}/{day}/{rank}")
            answer = None
            if call["answered_at"] is not None and rng.random() < SURVEYED:
                answer = _answer(rng, counter, opening.service, call["ended_at"])
                answer["id"] = uuid.uuid5(
                    DEMO_NAMESPACE, f"survey/{counter.device_id}/{day}/{rank}"
                )
            yield call, answer


def _call(
    rng: random.Random,
    counter: DemoCounter,
    service: str,
    requested: datetime,
    agents: dict[str, int | None],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device_id": counter.device_id,
        "site": counter.site,
        "service": service,
        "requested_at": requested,
        "answered_at": None,
        "agent_user_id": None,
    }
    outcome = rng.random()
    if outcome < ANSWERED:
        answered = requested + timedelta(seconds=rng.randint(*WAIT_S))
        ended = answered + timedelta(seconds=rng.randint(*LENGTH_S))
        reason = _pick(rng, HANGUP)
        row.update(answered_at=answered, agent_user_id=agents.get(service))
    elif outcome < ANSWERED + MISSED:
        ended, reason = requested + timedelta(seconds=RING_TIMEOUT_S), EndReason.MISSED
    else:
        ended = requested + timedelta(seconds=rng.randint(15, 90))
        reason = EndReason.CANCELLED
    row.update(ended_at=ended, end_reason=str(reason))
    return row


def _answer(
    rng: random.Random, counter: DemoCounter, service: str, ended: datetime
) -> dict[str, Any]:
    at = ended + timedelta(seconds=rng.randint(30, 90))
    return {
        "device_id": counter.device_id,
        "at": at,
        "received_at": at,
        "reported_at": at,
        "questionnaire_version": QUESTIONNAIRE_VERSION,
        "answers": {
            KEY_DEALT_WITH: _pick(rng, DEALT),
            KEY_SATISFACTION: _pick(rng, SATISFACTION),
            KEY_TRAVEL: _pick(rng, TRAVEL),
        },
        "service": service,
        "site": counter.site,
    }


Rows = list[dict[str, Any]]


def planned(today: date, agents: dict[str, int | None]) -> tuple[Rows, Rows]:
    """The calls and answers of the ``SEED_DAYS`` days before ``today``."""
    calls: Rows = []
    answers: Rows = []
    for n in range(SEED_DAYS, 0, -1):
        day = today - timedelta(days=n)
        if public_holiday(day):
            continue
        for counter in COUNTERS:
            for call, answer in _day_rows(counter, day, agents):
                calls.append(call)
                if answer is not None:
                    answers.append(answer)
    return calls, answers


def seed_statistics(session: Session, today: date) -> int:
    """Add the days not seeded yet; returns how many calls were added. The demo's counters
    must exist; its agents answer the seeded calls when they do (the caller commits)."""
    logins = {agent_login(c.service): c.service for c in COUNTERS}
    agents: dict[str, int | None] = dict.fromkeys(logins.values())
    found = session.execute(select(User.id, User.username).where(User.username.in_(logins)))
    for user_id, username in found:
        agents[logins[username]] = user_id
    calls, answers = planned(today, agents)
    added_calls = _insert_new(session, CallRecord, calls)
    _insert_new(session, SurveyRecord, answers)
    return added_calls


def _insert_new(session: Session, model: type[CallRecord] | type[SurveyRecord], rows: Rows) -> int:
    known = set(session.scalars(select(model.id).where(model.id.in_([r["id"] for r in rows]))))
    new = [row for row in rows if row["id"] not in known]
    if new:
        session.execute(insert(model), new)
    return len(new)
