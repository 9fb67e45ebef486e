"""Helpers for the storage tests: a migrated database, settings and contract messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import make_engine, make_session_factory
from fleet_server.mqtt import store
from fleet_server.mqtt.store import Received
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import Kind
from tests.support.databases import migrate_fresh

WAIT_TIMEOUT_S = 20.0  # generous: PostgreSQL on a loaded CI machine
POLL_S = 0.02


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"demo": True, "mqtt_client_id": f"fleet-{uuid.uuid4().hex[:8]}"}
    values.update(overrides)
    return Settings(**values)


@contextmanager
def migrated(url: str) -> Iterator[sessionmaker[Session]]:
    migrate_fresh(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def apply(sessions: sessionmaker[Session], settings: Settings, *items: Received) -> None:
    """Store ``items`` as one batch of the ingest, in one transaction."""
    with sessions.begin() as session:
        store.apply_batch(session, list(items), settings)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_TIMEOUT_S) -> None:
    """Poll until true (the database is written by another thread or process)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(POLL_S)


def status(
    state: str = "online",
    at: datetime | None = None,
    reason: str = "connected",
    interval: int | None = 30,
) -> contract.Status:
    return contract.Status(
        state=contract.Presence(state),
        software_version="1.2.3",
        at=at or contract.utcnow(),
        telemetry_interval_s=interval,
        reason=reason,
    )


def telemetry(at: datetime | None = None, **changes: Any) -> contract.Telemetry:
    """A healthy counter's telemetry; ``changes`` override top-level fields or peripherals."""
    peripherals: dict[str, Any] = {
        "camera": {"health": "ok"},
        "printer": {"health": "ok", "state": "idle"},
        "scanner": {"health": "ok", "devices": ["test:0"]},
        "button": {"health": "ok"},
    }
    for name in ("camera", "printer", "scanner", "button"):
        if name in changes:
            peripherals[name] = changes.pop(name)
    data: dict[str, Any] = {
        "at": at or contract.utcnow(),
        "uptime_s": 100.0,
        "cpu_temperature_c": 50.0,
        "throttling": None,
        "load": (0.5, 0.4, 0.3),
        "memory_used_pct": 40.0,
        "disk_used_pct": 20.0,
        "disk_free_bytes": 10**10,
        "peripherals": peripherals,
    }
    data.update(changes)
    return contract.Telemetry.model_validate(data)


def event(event_id: uuid.UUID | None = None, at: datetime | None = None) -> contract.Event:
    return contract.Event(
        id=event_id or uuid.uuid4(),
        at=at or contract.utcnow(),
        kind=contract.EventKind.CALL_STARTED,
        data={"service": "caf"},
    )


def received(
    device_id: str,
    message: contract.WireMessage,
    received_at: datetime | None = None,
    *,
    retained: bool = False,
) -> Received:
    kind = next(k for k, spec in contract.KINDS.items() if isinstance(message, spec.model))
    return Received(
        device_id=device_id,
        kind=Kind(kind),
        message=message,
        received_at=received_at or contract.utcnow(),
        retained=retained,
    )


def ago(**delta: float) -> datetime:
    return contract.utcnow() - timedelta(**delta)
