"""One batch of messages being applied: the rows it loaded and the rows it will write.

The devices concerned are created (insert-or-ignore) and loaded once, their open alerts
loaded once; :mod:`.kinds` applies each message to these, :mod:`.write` writes in bulk.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import (
    Alert,
    Device,
    EventRecord,
    StatusChange,
    SurveyRecord,
    TelemetrySample,
)
from fleet_server.mqtt.notify.vocab import AlertEvent
from fleet_server.mqtt.store import bulk
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import DeviceState, Kind, StatusReason

logger = logging.getLogger(__name__)

DEVICES: Table = Device.__table__  # type: ignore[assignment]
ALERTS: Table = Alert.__table__  # type: ignore[assignment]
STATUS_CHANGES: Table = StatusChange.__table__  # type: ignore[assignment]
SAMPLES: Table = TelemetrySample.__table__  # type: ignore[assignment]
EVENTS: Table = EventRecord.__table__  # type: ignore[assignment]
SURVEYS: Table = SurveyRecord.__table__  # type: ignore[assignment]

STATE_ONLINE = DeviceState.ONLINE
STATE_OFFLINE = DeviceState.OFFLINE
STATE_SILENT = DeviceState.SILENT
STATE_UNKNOWN = DeviceState.UNKNOWN
DEVICE_STATES = tuple(DeviceState)

REASON_TELEMETRY = StatusReason.TELEMETRY.value  # a silent/unknown counter sent telemetry
ID_CHUNK = 1_000  # ids per IN (…) list, well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class Received:
    """One validated message as it came off the broker."""

    device_id: str
    kind: Kind
    message: contract.WireMessage
    received_at: datetime
    retained: bool = False  # sent because we subscribed, not because it was just published


@dataclass(slots=True)
class DeviceRow:
    """The columns a batch reads, and the ones it will write (last value wins)."""

    id: str
    state: str
    state_since: datetime | None
    site: str = ""  # the site given at enrolment or by an administrator (never by a status)
    status_reported_at: datetime | None = None  # the last status applied, by its own clock
    status_reported_state: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    telemetry: contract.Telemetry | None = None  # the latest, dumped once at write time


@dataclass(slots=True)
class OpenAlert:
    row: dict[str, Any]  # the new row to insert, or {"b_id": id} of an existing one
    detail: str
    changed: bool = False


@dataclass(slots=True)
class AlertTransition:
    """An alert raised or cleared by this batch, to be notified once its id is known."""

    row: dict[str, Any]  # the alert's row: "id" set once inserted, or {"b_id": id}
    device_id: str
    kind: str
    detail: str
    event: AlertEvent
    at: datetime

    @property
    def alert_id(self) -> int:
        return int(self.row["id"] if "id" in self.row else self.row["b_id"])


@dataclass
class Batch:
    """What one batch has loaded and what it will write, all in bulk at the end."""

    session: Session
    settings: Settings
    devices: dict[str, DeviceRow]
    alerts: dict[tuple[str, str], OpenAlert]
    alert_delta: Counter[str] = field(default_factory=Counter)
    new_alerts: list[dict[str, Any]] = field(default_factory=list)
    closed_alerts: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[AlertTransition] = field(default_factory=list)  # to notify
    status_rows: list[dict[str, Any]] = field(default_factory=list)
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    survey_rows: list[dict[str, Any]] = field(default_factory=list)


# --- loading ----------------------------------------------------------------------------


def load(session: Session, settings: Settings, items: Sequence[Received]) -> Batch:
    first_seen: dict[str, datetime] = {}
    for item in items:
        first_seen.setdefault(item.device_id, item.received_at)
    ids = list(first_seen)
    devices = load_devices(session, ids)
    missing = [i for i in ids if i not in devices]
    if missing:  # first message from these counters (or another replica is creating them)
        rows = [{"id": i, "state": STATE_UNKNOWN, "state_since": first_seen[i]} for i in missing]
        insert_ignore(session, DEVICES, rows)
        devices.update(load_devices(session, missing))
    a = ALERTS.c
    open_alerts = session.execute(
        select(a.id, a.device_id, a.kind, a.detail).where(
            bulk.among(session, a.device_id, ids), a.cleared_at.is_(None)
        )
    )
    alerts = {
        (device_id, kind): OpenAlert(row={"b_id": alert_id}, detail=detail)
        for alert_id, device_id, kind, detail in open_alerts
    }
    return Batch(session=session, settings=settings, devices=devices, alerts=alerts)


def load_devices(session: Session, ids: list[str]) -> dict[str, DeviceRow]:
    d = DEVICES.c
    columns = (d.id, d.state, d.state_since, d.site, d.status_reported_at, d.status_reported_state)
    found = session.execute(select(*columns).where(bulk.among(session, d.id, ids)))
    return {
        i: DeviceRow(i, state, since, site or "", reported_at, reported_state)
        for i, state, since, site, reported_at, reported_state in found
    }


def insert_ignore(
    session: Session, table: Table, rows: list[dict[str, Any]], key: str | None = None
) -> set[Any]:
    """INSERT … ON CONFLICT DO NOTHING for SQLite and PostgreSQL; the keys actually inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported databases
        raise FleetError(f"database {dialect} is not supported (PostgreSQL or SQLite)")
    if key is None:
        session.execute(stmt, rows)
        return set()
    result = session.execute(stmt.returning(table.c[key]), rows)
    return set(result.scalars())
