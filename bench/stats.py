"""Benchmark: how long one month's uptake statistics take on a year of a 100-counter fleet.

Seeds ``COUNTERS`` counters on ``SITES`` sites and ``CALLS`` calls spread over 2024 (4
services; two thirds answered, a sixth missed, the rest abandoned) with a questionnaire
after every other answered call, then times ``monthly_stats`` (all sites, and one site),
``daily_calls``, and — as the baseline in the same run — a plain ``COUNT(*)`` of the same
month's calls (the least any per-month query must read). SQLite, then PostgreSQL when one
answers (``GUICHET_TEST_POSTGRES_URL`` or 127.0.0.1:5432).

Run: ``.venv/bin/python bench/stats.py`` (about a minute).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from fleet_server.db import make_engine, make_session_factory, migrate  # noqa: E402
from fleet_server.models import CallRecord, Device, SurveyRecord  # noqa: E402
from fleet_server.stats import uptake as stats  # noqa: E402
from tests.support.databases import fresh_database, postgres_available  # noqa: E402

COUNTERS = 100
SITES = 25
SERVICES = ("caf", "msa", "france-travail", "carsat")
CALLS = 100_000  # a year
YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
MONTH = date(2024, 6, 1)
REPEATS = 7  # timed runs per query; the median is printed
CHUNK = 5_000


def _seed(sessions: sessionmaker[Session]) -> None:
    rng = random.Random(7)
    devices = [
        {"id": f"guichet-{i:03d}", "site": f"Site {i % SITES:02d}", "name": f"G{i}"}
        for i in range(COUNTERS)
    ]
    calls: list[dict[str, Any]] = []
    surveys: list[dict[str, Any]] = []
    for n in range(CALLS):
        device = devices[rng.randrange(COUNTERS)]
        requested = YEAR_START + timedelta(seconds=rng.randrange(366 * 86_400))
        roll = rng.random()
        answered = requested + timedelta(seconds=rng.randrange(5, 300)) if roll < 0.67 else None
        ended = (answered or requested) + timedelta(seconds=rng.randrange(30, 1200))
        reason = "hangup_agent" if answered else ("missed" if roll < 0.84 else "cancelled")
        call = {
            "id": uuid.uuid4(),
            "device_id": device["id"],
            "site": device["site"],
            "service": SERVICES[n % len(SERVICES)],
            "requested_at": requested,
            "answered_at": answered,
            "ended_at": ended,
            "end_reason": reason,
        }
        calls.append(call)
        if answered and n % 2:
            surveys.append(
                {
                    "id": uuid.uuid4(),
                    "device_id": device["id"],
                    "at": ended,
                    "received_at": ended,
                    "questionnaire_version": 1,
                    "answers": {
                        "satisfaction": str(rng.randint(1, 5)),
                        "dealt_with": rng.choice(("yes", "partly", "no")),
                        "travel": rng.choice(("no", "lt10", "10to30", "gt30")),
                    },
                    "service": call["service"],
                    "site": device["site"],
                }
            )
    with sessions.begin() as session:
        session.execute(insert(Device), devices)
        for table, rows in ((CallRecord, calls), (SurveyRecord, surveys)):
            for start in range(0, len(rows), CHUNK):
                session.execute(insert(table), rows[start : start + CHUNK])
    print(f"  seeded {len(calls):,} calls and {len(surveys):,} questionnaires")


def _time(sessions: sessionmaker[Session], query: Callable[[Session], object]) -> float:
    runs = []
    for _ in range(REPEATS):
        with sessions() as session:
            t0 = time.perf_counter()
            query(session)
            runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _count_month(session: Session) -> int:
    start, end = stats.month_bounds(MONTH)
    at = CallRecord.requested_at
    stmt = select(func.count()).select_from(CallRecord).where(at >= start, at < end)
    return int(session.scalar(stmt) or 0)


def run(label: str, url: str) -> None:
    print(f"\n{label}")
    migrate(url)
    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        _seed(sessions)
        with sessions() as session:
            month_calls = _count_month(session)
            rows = stats.monthly_stats(session, MONTH)
        print(f"  {MONTH:%Y-%m}: {month_calls:,} calls, {len(rows) - 1} (site, service) rows")
        baseline = _time(sessions, _count_month)
        timings = {
            "monthly_stats, all sites": _time(sessions, lambda s: stats.monthly_stats(s, MONTH)),
            "monthly_stats, one site": _time(
                sessions, lambda s: stats.monthly_stats(s, MONTH, site="Site 03")
            ),
            "daily_calls, all sites": _time(sessions, lambda s: stats.daily_calls(s, MONTH)),
        }
        print(f"  baseline COUNT(*) of the month's calls: {baseline * 1000:8.1f} ms")
        for name, seconds in timings.items():
            ratio = seconds / baseline if baseline else float("nan")
            print(f"  {name:<38} {seconds * 1000:8.1f} ms  ({ratio:.1f}× the baseline)")
    finally:
        engine.dispose()


def main() -> int:
    print(f"Statistics of one month over a year of {COUNTERS} counters (median of {REPEATS})")
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as tmp:
        with fresh_database("sqlite", Path(tmp)) as url:
            run("SQLite", url)
        if postgres_available():
            with fresh_database("postgresql", Path(tmp)) as url:
                run("PostgreSQL", url)
        else:
            print("\nPostgreSQL not reachable: skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
