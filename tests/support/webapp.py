"""The real fleet web app on a fresh database, for route-level tests.

``WebApp`` holds the app's settings, a session factory on the same database (to seed rows
with the models) and a started ``TestClient`` (lifespan included, ingest disabled).
"""

from __future__ import annotations

import re
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from fleet_server.app import create_app
from fleet_server.db import make_engine, make_session_factory
from fleet_server.models import Device
from fleet_server.security import auth
from fleet_server.settings import Settings
from tests.support.databases import migrate_fresh

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 and warns once, at import, when it finds httpx (0.28).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SITES = (
    "Bandiat Tardoire Avenir",
    "Pays de la Météorite",
    "Monts de Châlus",
    "Vallée de la Gorre",
)
STATE_CYCLE = ("online", "online", "online", "offline", "silent", "unknown", "online")


def test_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "secret_key": secrets.token_urlsafe(32),
        "ingest_enabled": False,
        "staleness_check_s": 3600.0,  # one check at start-up; tests seed fresh telemetry
        "session_cookie_secure": False,  # tests speak plain HTTP on loopback
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class WebApp:
    settings: Settings
    sessions: sessionmaker[Session]
    client: TestClient

    def add_user(self, username: str = "admin", role: str = "admin") -> None:
        with self.sessions.begin() as session:
            auth.upsert_user(session, username, PASSWORD, role=role)

    def token(self, username: str = "admin") -> str:
        with self.sessions() as session:
            return auth.create_api_token(session, username)

    def csrf(self, path: str = "/login") -> str:
        match = CSRF_RE.search(self.client.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str = "admin", password: str = PASSWORD) -> Any:
        data = {"username": username, "password": password, "csrf_token": self.csrf()}
        return self.client.post("/login", data=data, follow_redirects=False)


@contextmanager
def running_app(db_url: str, **overrides: Any) -> Iterator[WebApp]:
    migrate_fresh(db_url)
    settings = test_settings(db_url, **overrides)
    engine = make_engine(db_url)
    try:
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            yield WebApp(settings, make_session_factory(engine), client)
    finally:
        engine.dispose()


def device_row(i: int, now: datetime) -> dict[str, Any]:
    """A deterministic counter: site, state and alerts cycle with ``i``."""
    state = STATE_CYCLE[i % len(STATE_CYCLE)]
    return {
        "id": f"guichet-{i:05d}",
        "site": SITES[i % len(SITES)],
        "name": f"Guichet {i:05d}",
        "state": state,
        "state_since": now - timedelta(minutes=i % 90),
        "last_seen": now,
        "last_telemetry_at": now,
        "telemetry_interval_s": 30,
        "software_version": "0.1.0",
        "cpu_temperature_c": 40.0 + i % 30,
        "throttled": False,
        "disk_used_pct": float(i % 100),
        "load1": 0.1 * (i % 10),
        "camera_health": "ok",
        "printer_health": "ok" if i % 11 else "error",
        "printer_detail": None if i % 11 else "media-empty",
        "scanner_health": "ok",
        "button_health": "ok",
        "open_alerts": 1 if i % 11 == 0 else 0,
    }


def seed_devices(sessions: sessionmaker[Session], count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows = [device_row(i, now) for i in range(count)]
    with sessions.begin() as session:
        for start in range(0, count, 2000):
            session.execute(insert(Device), rows[start : start + 2000])
    return rows
