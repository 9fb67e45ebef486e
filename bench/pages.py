"""Benchmark: the server's time per dashboard page at 10,000 counters and 10,000 open alerts.

Seeds ``COUNTERS`` counters (one open alert each), ``CLEARED_ALERTS`` cleared alerts,
``CALLS`` calls in the call log (about a year of a busy fleet; answered ones with a quality
summary, which the fleet table's weekly flag aggregates) and ``AUDIT_ENTRIES`` audit entries,
then ``VACUUM ANALYZE`` on PostgreSQL (what its autovacuum does after such inserts on a live
server; the test PostgreSQL here runs without autovacuum). Serves the real app in
process (``TestClient``: session cookie, login, CSRF and security middlewares, the route, the
queries and the template; no network) and times each page ``REQUESTS`` times, round-robin so
a load spike on the machine hits every page alike.

The baseline, measured in the same run: a trivial page the bench adds to the app — the same
login check, database session and base template, no query of its own. Prints per page the
median and 95th percentile, their ratio to the baseline's, and the page's size. SQLite, then
PostgreSQL when one answers (``GUICHET_TEST_POSTGRES_URL`` or 127.0.0.1:5432).

Run: ``.venv/bin/python bench/pages.py`` (a few minutes; ``--requests N`` to change the
count, ``--sqlite-only`` / ``--postgres-only``).
"""

from __future__ import annotations

import argparse
import html
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import Request  # noqa: E402
from fastapi.responses import HTMLResponse, Response  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from fleet_server.models import Alert, AuditEntry, CallRecord, Device  # noqa: E402
from fleet_server.web.deps import DashboardUser, Db, render  # noqa: E402
from tests.support.databases import fresh_database, postgres_available  # noqa: E402
from tests.support.webapp import SITES, WebApp, device_row, running_app  # noqa: E402

COUNTERS = 10_000  # one open alert each: 10,000 open alerts
CLEARED_ALERTS = 50_000
CALLS = 200_000
AUDIT_ENTRIES = 50_000
SERVICES = ("caf", "msa", "france-travail", "carsat")
ALERT_KINDS = ("offline", "silent", "printer", "scanner", "camera", "disk", "temperature")
AUDIT_ACTIONS = ("command.send", "device.service", "enrolment.approve", "user.update")
END_REASONS = ("hangup_agent", "hangup_counter", "missed", "cancelled")
REQUESTS = 40  # timed requests per page
WARMUP = 3  # untimed requests per page first (template compilation, caches)
CHUNK = 5_000
GOAL_P95_MS = 100.0
NEXT_RE = re.compile(r'href="([^"]+)" rel="next"')


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _seed(sessions: sessionmaker[Session]) -> None:
    rng = random.Random(17)
    now = datetime.now(UTC)
    devices = [device_row(i, now) | {"open_alerts": 1} for i in range(COUNTERS)]
    open_alerts = [
        {
            "device_id": d["id"],
            "kind": ALERT_KINDS[i % len(ALERT_KINDS)],
            "detail": "détail de l'alerte",
            "raised_at": now - timedelta(seconds=rng.randrange(30 * 86_400)),
        }
        for i, d in enumerate(devices)
    ]
    cleared = []
    for _ in range(CLEARED_ALERTS):
        raised = now - timedelta(seconds=rng.randrange(365 * 86_400))
        cleared.append(
            {
                "device_id": devices[rng.randrange(COUNTERS)]["id"],
                "kind": rng.choice(ALERT_KINDS),
                "detail": "",
                "raised_at": raised,
                "cleared_at": raised + timedelta(seconds=rng.randrange(60, 86_400)),
            }
        )
    calls = []
    for n in range(CALLS):
        device = devices[rng.randrange(COUNTERS)]
        requested = now - timedelta(seconds=rng.randrange(365 * 86_400))
        answered = requested + timedelta(seconds=rng.randrange(5, 300)) if n % 3 else None
        measured = float(rng.randrange(30, 1200)) if answered else None
        calls.append(
            {
                "measured_s": measured,
                "frozen_s": measured * rng.random() * 0.05 if measured else None,
                "video_kbps_avg": float(rng.randrange(150, 1500)) if measured else None,
                "loss_pct": rng.random() * 8 if measured else None,
                "id": uuid.UUID(int=rng.getrandbits(128)),
                "device_id": device["id"],
                "site": device["site"],
                "service": SERVICES[n % len(SERVICES)],
                "requested_at": requested,
                "answered_at": answered,
                "ended_at": (answered or requested) + timedelta(seconds=rng.randrange(30, 1200)),
                "end_reason": END_REASONS[0] if answered else rng.choice(END_REASONS[2:]),
            }
        )
    audit = [
        {
            "at": now - timedelta(seconds=rng.randrange(3 * 365 * 86_400)),
            "actor": f"admin-{n % 5}",
            "action": AUDIT_ACTIONS[n % len(AUDIT_ACTIONS)],
            "target": devices[rng.randrange(COUNTERS)]["id"],
            "detail": {"name": "reboot"} if n % 4 == 0 else {},
        }
        for n in range(AUDIT_ENTRIES)
    ]
    with sessions.begin() as session:
        for table, rows in (
            (Device, devices),
            (Alert, open_alerts),
            (Alert, cleared),
            (CallRecord, calls),
            (AuditEntry, audit),
        ):
            for chunk in _chunks(rows):
                session.execute(insert(table), chunk)
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":  # what autovacuum soon does on a live server
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    print(
        f"  seeded {COUNTERS:,} counters, {len(open_alerts):,} open and {len(cleared):,} cleared"
        f" alerts, {len(calls):,} calls, {len(audit):,} audit entries"
    )


def _add_trivial_page(web: WebApp) -> None:
    def trivial(request: Request, db: Db, user: DashboardUser) -> Response:
        return render(request, "error.html", {"message": "Page témoin."}, principal=user)

    web.client.app.add_api_route(  # type: ignore[attr-defined]
        "/bench/trivial", trivial, methods=["GET"], response_class=HTMLResponse
    )


def _deep(web: WebApp, url: str, pages: int) -> str:
    """The URL of the ``pages``-th page after ``url``, following its "next" links."""
    for _ in range(pages):
        match = NEXT_RE.search(web.client.get(url).text)
        assert match is not None, f"no page after {url}"
        url = html.unescape(match.group(1))
    assert 'rel="prev"' in web.client.get(url).text, f"{url} is not {pages} pages in"
    return url


def _pages(web: WebApp) -> dict[str, str]:
    site = SITES[2].replace(" ", "+")
    return {
        "trivial page (baseline)": "/bench/trivial",
        "fleet, first page": "/",
        "fleet, offline only": "/?state=offline",
        "fleet, text search": "/?q=0123",
        "fleet, live fragment": "/fleet/rows",
        "fleet, 20 pages in": _deep(web, "/", 20),
        "alerts, first page": "/alerts",
        "alerts, one kind": "/alerts?kind=printer",
        "alerts, one site": f"/alerts?site={site}",
        "alerts, cleared": "/alerts?list=cleared",
        "alerts, 20 pages in": _deep(web, "/alerts", 20),
        "call log, every service": "/calls",
        "call log, one service": "/calls?service=caf",
        "call log, missed at a site": f"/calls?service=caf&site={site}&outcome=missed",
        "call log, 20 pages in": _deep(web, "/calls?service=caf", 20),
        "audit log, first page": "/admin/audit",
        "audit log, one action": "/admin/audit?action=device.service",
        "audit log, 20 pages in": _deep(web, "/admin/audit", 20),
    }


def _time(web: WebApp, pages: dict[str, str], requests: int) -> dict[str, tuple[list[float], int]]:
    sizes: dict[str, int] = {}
    for name, url in pages.items():
        for _ in range(WARMUP):
            response = web.client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        sizes[name] = len(response.content)
    runs: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(requests):
        for name, url in pages.items():
            t0 = time.perf_counter()
            response = web.client.get(url)
            runs[name].append(time.perf_counter() - t0)
            assert response.status_code == 200, (url, response.status_code)
    return {name: (runs[name], sizes[name]) for name in pages}


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def run(label: str, url: str, requests: int) -> None:
    print(f"\n{label}")
    with running_app(url) as web:
        _seed(web.sessions)
        web.add_user()
        assert web.login().status_code == 303
        _add_trivial_page(web)
        results = _time(web, _pages(web), requests)
    base_runs, _ = results["trivial page (baseline)"]
    base_med, base_p95 = statistics.median(base_runs), _p95(base_runs)
    print(f"  {'page':<28} {'median':>9} {'p95':>9}  {'×base med':>9} {'×base p95':>9} {'size':>8}")
    worst = 0.0
    for name, (runs, size) in results.items():
        med, p95 = statistics.median(runs), _p95(runs)
        if name != "trivial page (baseline)":
            worst = max(worst, p95)
        print(
            f"  {name:<28} {med * 1000:7.1f}ms {p95 * 1000:7.1f}ms  {med / base_med:8.1f}×"
            f" {p95 / base_p95:8.1f}× {size / 1024:6.0f}KB"
        )
    verdict = "met" if worst * 1000 <= GOAL_P95_MS else "NOT met"
    print(f"  slowest p95 {worst * 1000:.1f} ms: goal p95 ≤ {GOAL_P95_MS:.0f} ms {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    print(
        f"Server time per page, {COUNTERS:,} counters and {COUNTERS:,} open alerts "
        f"({args.requests} requests per page, round-robin)"
    )
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as tmp:
        if not args.postgres_only:
            with fresh_database("sqlite", Path(tmp)) as url:
                run("SQLite", url, args.requests)
        if args.sqlite_only:
            return 0
        if postgres_available():
            with fresh_database("postgresql", Path(tmp)) as url:
                run("PostgreSQL", url, args.requests)
        else:
            print("\nPostgreSQL not reachable: skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
