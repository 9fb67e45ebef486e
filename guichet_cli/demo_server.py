"""The demo's fleet server: its settings, its database made ready (logins, counters, the
broker's accounts, the timetable, past weeks of statistics), and what the demo asks of it
while stopping.

The database is SQLite under ``var/demo``; it persists between runs, so the admin password
stays the same, while each run gives every counter a new call token and broker password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from guichet.schedule import PARIS
from guichet_cli.demo_scheme import (
    COUNTERS,
    SERVICES,
    agent_login,
    reception_login,
    seed_schedules,
)
from guichet_cli.demo_stats import seed_statistics

if TYPE_CHECKING:
    from fleet_server.settings import Settings

logger = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
ALERT_OFFLINE_AFTER_MIN = 1.0  # a stopped counter raises its alert while you watch
OFFLINE_POLL_S = 0.1  # how often the database is read while waiting for "offline"


@dataclass(frozen=True)
class BrokerAccess:
    """How the server and the counters reach the broker."""

    url: str
    protocol: str
    server_user: str | None = None  # None: an outside broker, anonymous
    server_password: str | None = None
    files_dir: Path | None = None  # the demo's Mosquitto: where its passwd and acl go
    pid_file: Path | None = None


@dataclass(frozen=True)
class PreparedServer:
    settings: Settings
    admin_password: str
    call_tokens: dict[str, str]  # by counter
    broker_passwords: dict[str, str]  # by counter; empty with an outside broker


class DemoServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the demo stops the counters first, waits for
    their "offline" to be stored, and only then stops the server (issue 17)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_password(demo_dir: Path) -> str:
    """The demo's admin password: made once, kept in var/demo so it stays the same."""
    path = demo_dir / "admin-password.txt"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(9)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def demo_settings(demo_dir: Path, broker: BrokerAccess) -> Settings:
    from fleet_server.settings import Settings

    return Settings(
        demo=True,
        database_url=f"sqlite:///{(demo_dir / 'fleet.sqlite3').resolve()}",
        mqtt_url=broker.url,
        mqtt_protocol=broker.protocol,
        mqtt_client_id=f"guichet-demo-server-{os.getpid()}",
        mqtt_username=broker.server_user,
        mqtt_password=broker.server_password,
        broker_files_dir=broker.files_dir,
        broker_pid_file=broker.pid_file,
        alert_offline_after_min=ALERT_OFFLINE_AFTER_MIN,
    )


def prepare_server(demo_dir: Path, broker: BrokerAccess) -> PreparedServer:
    """Settings, migrated database, the admin and one agent per service, each counter's
    service, call token and broker account; with the demo's Mosquitto, its password and ACL
    files written from the database, as the server writes them."""
    from fleet_server.calls.admin import new_call_token, set_device_service
    from fleet_server.db import make_engine, make_session_factory, migrate
    from fleet_server.models import Device
    from fleet_server.mqtt.broker_files import BrokerFiles
    from fleet_server.security.auth import upsert_user
    from fleet_server.security.enrolment import broker_password_hash

    settings = demo_settings(demo_dir, broker)
    migrate(settings.database_url)
    password = admin_password(demo_dir)
    engine = make_engine(settings.database_url)
    tokens: dict[str, str] = {}
    broker_passwords: dict[str, str] = {}
    try:
        with make_session_factory(engine)() as session:
            upsert_user(session, ADMIN_USERNAME, password, role="admin")
            for service in SERVICES:
                upsert_user(session, agent_login(service), password, role="agent", service=service)
            session.commit()
            for counter in COUNTERS:
                tokens[counter.device_id] = new_call_token(session, counter.device_id, create=True)
                set_device_service(session, counter.device_id, counter.service)
                device = session.get_one(Device, counter.device_id)
                # As an administrator (or enrolment) would: a counter's status never names it.
                device.site, device.name = counter.site, counter.name
                if broker.files_dir is not None:
                    broker_passwords[counter.device_id] = secrets.token_urlsafe(18)
                    device.broker_password_hash = broker_password_hash(
                        broker_passwords[counter.device_id]
                    )
                upsert_user(
                    session, reception_login(counter), password, role="reception", site=counter.site
                )
            seed_schedules(session)
            seed_statistics(session, datetime.now(PARIS).date())
            session.commit()
            if broker.files_dir is not None:
                assert broker.server_user is not None
                assert broker.server_password is not None
                files = BrokerFiles(
                    broker.files_dir, broker.server_user, broker.server_password, None
                )
                files.sync(session)  # the broker starts with them; the server rewrites them
    finally:
        engine.dispose()
    return PreparedServer(settings, password, tokens, broker_passwords)


def wait_recorded_offline(
    database_url: str, device_ids: Sequence[str], timeout_s: float
) -> list[str]:
    """Wait until the server has stored each counter as offline; returns those it has not
    within ``timeout_s``. Blocking: run it in a thread."""
    from sqlalchemy import select

    from fleet_server.db import make_engine
    from fleet_server.models import Device
    from guichet.contract import DeviceState

    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(Device.id).where(
                        Device.id.in_(device_ids), Device.state == DeviceState.OFFLINE
                    )
                ).scalars()
                pending = sorted(set(device_ids) - set(rows))
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(OFFLINE_POLL_S)
    finally:
        engine.dispose()
