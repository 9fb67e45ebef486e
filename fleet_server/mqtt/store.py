"""Apply validated contract messages to the database, inside a session the caller commits.

One call to :func:`apply_batch` handles many messages in arrival order with a handful of
statements: the devices concerned are created (insert-or-ignore) and loaded once, their
open alerts loaded once, and the rows to insert (status history, telemetry samples,
events, survey answers) are written in bulk at the end. Events and survey answers are
inserted-or-ignored by their own id, so a redelivered QoS 1 message is stored once and
reported as a duplicate.

Device states: ``online``, ``offline`` (from status messages and the broker's last will),
``silent`` (set by :mod:`fleet_server.mqtt.health` when telemetry stops), ``unknown`` (seen, but
no status yet). Alerts raised here from telemetry: printer, scanner, camera, disk,
temperature, throttled; the presence alerts (offline, silent) belong to the health check.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import (
    Alert,
    CommandRecord,
    Device,
    EventRecord,
    StatusChange,
    SurveyRecord,
    TelemetrySample,
)
from fleet_server.mqtt.alert_rules import (
    ALERT_KINDS,
    ALERT_OFFLINE,
    ALERT_SILENT,
    DETAIL_MAX_CHARS,
    PRESENCE_ALERTS,
    TELEMETRY_ALERTS,
    is_throttled,
    printer_detail,
    telemetry_conditions,
)
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import Kind

logger = logging.getLogger(__name__)

__all__ = [  # the alert vocabulary is re-exported for the web app
    "ALERT_KINDS",
    "ALERT_OFFLINE",
    "ALERT_SILENT",
    "DEVICE_STATES",
    "PRESENCE_ALERTS",
    "TELEMETRY_ALERTS",
    "Received",
    "adjust_open_alerts",
    "apply",
    "apply_batch",
    "insert_ignore",
    "telemetry_conditions",
]

_devices: Table = Device.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
_status_changes: Table = StatusChange.__table__  # type: ignore[assignment]
_samples: Table = TelemetrySample.__table__  # type: ignore[assignment]
_events: Table = EventRecord.__table__  # type: ignore[assignment]
_surveys: Table = SurveyRecord.__table__  # type: ignore[assignment]

STATE_ONLINE = "online"
STATE_OFFLINE = "offline"
STATE_SILENT = "silent"
STATE_UNKNOWN = "unknown"
DEVICE_STATES = (STATE_ONLINE, STATE_OFFLINE, STATE_SILENT, STATE_UNKNOWN)

REASON_TELEMETRY = "telemetry"  # a silent/unknown counter came back by sending telemetry
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
class _DeviceRow:
    """The columns a batch reads, and the ones it will write (last value wins)."""

    id: str
    state: str
    state_since: datetime | None
    site: str = ""  # the site the counter is at now (a status in the batch may change it)
    changes: dict[str, Any] = field(default_factory=dict)
    telemetry: contract.Telemetry | None = None  # the latest, dumped once at write time


@dataclass(slots=True)
class _OpenAlert:
    row: dict[str, Any]  # the new row to insert, or {"b_id": id} of an existing one
    detail: str
    changed: bool = False


@dataclass
class _Batch:
    """What one batch has loaded and what it will write, all in bulk at the end."""

    session: Session
    settings: Settings
    devices: dict[str, _DeviceRow]
    alerts: dict[tuple[str, str], _OpenAlert]
    alert_delta: Counter[str] = field(default_factory=Counter)
    new_alerts: list[dict[str, Any]] = field(default_factory=list)
    closed_alerts: list[dict[str, Any]] = field(default_factory=list)
    status_rows: list[dict[str, Any]] = field(default_factory=list)
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    survey_rows: list[dict[str, Any]] = field(default_factory=list)


def apply(session: Session, item: Received, settings: Settings) -> bool:
    """Apply one message; True when it was a duplicate (an event or answer already stored)."""
    return apply_batch(session, [item], settings)[0]


def apply_batch(session: Session, items: Sequence[Received], settings: Settings) -> list[bool]:
    """Apply messages in order; one flag per message, True for a duplicate. No commit."""
    if not items:
        return []
    batch = _load(session, settings, items)
    for item in items:
        _APPLY[item.kind](batch, item)
    return _write(batch, items)


# --- loading ----------------------------------------------------------------------------


def _load(session: Session, settings: Settings, items: Sequence[Received]) -> _Batch:
    first_seen: dict[str, datetime] = {}
    for item in items:
        first_seen.setdefault(item.device_id, item.received_at)
    ids = list(first_seen)
    devices = _load_devices(session, ids)
    missing = [i for i in ids if i not in devices]
    if missing:  # first message from these counters (or another replica is creating them)
        rows = [{"id": i, "state": STATE_UNKNOWN, "state_since": first_seen[i]} for i in missing]
        insert_ignore(session, _devices, rows)
        devices.update(_load_devices(session, missing))
    a = _alerts.c
    open_alerts = session.execute(
        select(a.id, a.device_id, a.kind, a.detail).where(
            a.device_id.in_(ids), a.cleared_at.is_(None)
        )
    )
    alerts = {
        (device_id, kind): _OpenAlert(row={"b_id": alert_id}, detail=detail)
        for alert_id, device_id, kind, detail in open_alerts
    }
    return _Batch(session=session, settings=settings, devices=devices, alerts=alerts)


def _load_devices(session: Session, ids: list[str]) -> dict[str, _DeviceRow]:
    d = _devices.c
    found = session.execute(select(d.id, d.state, d.state_since, d.site).where(d.id.in_(ids)))
    return {i: _DeviceRow(i, state, since, site or "") for i, state, since, site in found}


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


# --- per kind ---------------------------------------------------------------------------


def _event_time(at: datetime, received_at: datetime) -> datetime:
    """The counter's timestamp, but never in the server's future (a fast clock)."""
    return min(at, received_at)


def _transition(batch: _Batch, device: _DeviceRow, state: str, at: datetime, reason: str) -> None:
    device.state = state
    device.state_since = at
    device.changes.update(state=state, state_since=at)
    batch.status_rows.append({"device_id": device.id, "at": at, "state": state, "reason": reason})


def _apply_status(batch: _Batch, item: Received) -> None:
    status = item.message
    assert isinstance(status, contract.Status)
    device = batch.devices[item.device_id]
    at = _event_time(status.at, item.received_at)
    if status.reason == "last-will":
        at = item.received_at  # a will is stamped when it was armed, at connection time
    if item.retained and not _retained_is_news(device, at):
        return
    device.changes["software_version"] = status.software_version
    # Until enrolment (the security issue) the counter's own site and name are taken as said.
    if status.site:
        device.changes["site"] = status.site
    if status.name:
        device.changes["name"] = status.name
    if status.telemetry_interval_s is not None:
        device.changes["telemetry_interval_s"] = status.telemetry_interval_s
    if status.state is contract.Presence.ONLINE:
        device.changes["last_seen"] = item.received_at
    if device.state != status.state.value:
        _transition(batch, device, status.state.value, at, status.reason)


def _retained_is_news(device: _DeviceRow, at: datetime) -> bool:
    """A retained status replayed on subscription counts only if newer than what we know."""
    if device.state == STATE_UNKNOWN or device.state_since is None:
        return True
    return at > device.state_since


def _apply_telemetry(batch: _Batch, item: Received) -> None:
    tel = item.message
    assert isinstance(tel, contract.Telemetry)
    device = batch.devices[item.device_id]
    at = _event_time(tel.at, item.received_at)
    device.changes.update(last_seen=item.received_at, last_telemetry_at=item.received_at)
    device.telemetry = tel
    if device.state in (STATE_SILENT, STATE_UNKNOWN):
        _transition(batch, device, STATE_ONLINE, at, REASON_TELEMETRY)
    batch.sample_rows.append(
        {
            "device_id": device.id,
            "at": at,
            "cpu_temperature_c": tel.cpu_temperature_c,
            "load1": tel.load[0],
            "memory_used_pct": tel.memory_used_pct,
            "disk_used_pct": tel.disk_used_pct,
        }
    )
    for kind, detail in telemetry_conditions(tel, batch.settings).items():
        _sync_alert(batch, device.id, kind, detail, item.received_at)


def _telemetry_columns(tel: contract.Telemetry) -> dict[str, Any]:
    """The denormalised fields the fleet table shows, from a counter's latest telemetry."""
    peripherals = tel.peripherals
    return {
        "cpu_temperature_c": tel.cpu_temperature_c,
        "throttled": is_throttled(tel),
        "disk_used_pct": tel.disk_used_pct,
        "load1": tel.load[0],
        "camera_health": peripherals.camera.health.value,
        "printer_health": peripherals.printer.health.value,
        "printer_detail": printer_detail(peripherals.printer),
        "scanner_health": peripherals.scanner.health.value,
        "button_health": peripherals.button.health.value,
        "last_telemetry": tel.model_dump(mode="json"),
    }


def _sync_alert(batch: _Batch, device_id: str, kind: str, detail: str | None, at: datetime) -> None:
    """Raise, update or clear the one open alert of this kind for this device."""
    key = (device_id, kind)
    alert = batch.alerts.get(key)
    if detail is not None:
        detail = detail[:DETAIL_MAX_CHARS]
        if alert is None:
            row = {"device_id": device_id, "kind": kind, "detail": detail, "raised_at": at}
            row["cleared_at"] = None
            batch.new_alerts.append(row)
            batch.alerts[key] = _OpenAlert(row=row, detail=detail)
            batch.alert_delta[device_id] += 1
            logger.info("alert raised", extra={"device_id": device_id, "alert": kind})
        elif alert.detail != detail:
            alert.detail = alert.row["detail"] = detail
            alert.changed = "b_id" in alert.row
    elif alert is not None:
        if "b_id" in alert.row:
            batch.closed_alerts.append({"b_id": alert.row["b_id"], "b_at": at})
        else:
            alert.row["cleared_at"] = at  # raised and cleared within this batch
        del batch.alerts[key]
        batch.alert_delta[device_id] -= 1
        logger.info("alert cleared", extra={"device_id": device_id, "alert": kind})


def _apply_event(batch: _Batch, item: Received) -> None:
    event = item.message
    assert isinstance(event, contract.Event)
    batch.devices[item.device_id].changes["last_seen"] = item.received_at
    batch.event_rows.append(
        {
            "id": event.id,
            "device_id": item.device_id,
            "at": _event_time(event.at, item.received_at),
            "received_at": item.received_at,
            "kind": event.kind.value,
            "data": dict(event.data),
        }
    )


def _apply_survey(batch: _Batch, item: Received) -> None:
    answer = item.message
    assert isinstance(answer, contract.SurveyAnswer)
    device = batch.devices[item.device_id]
    device.changes["last_seen"] = item.received_at
    batch.survey_rows.append(
        {
            "id": answer.id,
            "device_id": item.device_id,
            "at": _event_time(answer.at, item.received_at),
            "received_at": item.received_at,
            "questionnaire_version": answer.questionnaire_version,
            "answers": dict(answer.answers),
            # For the statistics: the call's service, and the counter's site when received.
            "service": answer.service,
            "site": device.changes.get("site", device.site),
        }
    )


def _apply_command_ack(batch: _Batch, item: Received) -> None:
    ack = item.message
    assert isinstance(ack, contract.CommandAck)
    batch.devices[item.device_id].changes["last_seen"] = item.received_at
    batch.session.execute(
        update(CommandRecord)
        .where(
            CommandRecord.request_id == ack.request_id,
            CommandRecord.device_id == item.device_id,  # a counter acks only its own commands
        )
        .values(acked_at=_event_time(ack.at, item.received_at), ok=ack.ok, detail=ack.detail)
    )


def _reject_kind(batch: _Batch, item: Received) -> None:
    raise contract.ContractError(f"{item.kind.value} is not sent by counters")


_APPLY = {
    Kind.STATUS: _apply_status,
    Kind.TELEMETRY: _apply_telemetry,
    Kind.EVENT: _apply_event,
    Kind.SURVEY: _apply_survey,
    Kind.CMD_ACK: _apply_command_ack,
    Kind.CMD: _reject_kind,
    Kind.CONFIG: _reject_kind,
}


# --- writing ----------------------------------------------------------------------------


def _write(batch: _Batch, items: Sequence[Received]) -> list[bool]:
    session = batch.session
    _update_devices(session, batch.devices.values())
    _write_alerts(batch)
    adjust_open_alerts(session, batch.alert_delta.items())
    if batch.status_rows:
        session.execute(insert(_status_changes), batch.status_rows)
    if batch.sample_rows:
        session.execute(insert(_samples), batch.sample_rows)
    new_ids = insert_ignore(session, _events, batch.event_rows, key="id")
    new_ids |= insert_ignore(session, _surveys, batch.survey_rows, key="id")
    return _duplicate_flags(items, new_ids)


def _update_devices(session: Session, devices: Iterable[_DeviceRow]) -> None:
    """One executemany UPDATE per distinct set of changed columns (usually one or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for device in devices:
        if device.telemetry is not None:
            device.changes.update(_telemetry_columns(device.telemetry))
        if not device.changes:
            continue
        columns = tuple(sorted(device.changes))
        row = {f"v_{name}": value for name, value in device.changes.items()}
        row["b_id"] = device.id
        groups.setdefault(columns, []).append(row)
    for columns, rows in groups.items():
        stmt = (
            update(_devices)
            .where(_devices.c.id == bindparam("b_id"))
            .values({name: bindparam(f"v_{name}") for name in columns})
        )
        session.connection().execute(stmt, rows)


def _write_alerts(batch: _Batch) -> None:
    connection = batch.session.connection()
    if batch.new_alerts:
        connection.execute(insert(_alerts), batch.new_alerts)
    if batch.closed_alerts:
        stmt = (
            update(_alerts)
            .where(_alerts.c.id == bindparam("b_id"))
            .values(cleared_at=bindparam("b_at"))
        )
        connection.execute(stmt, batch.closed_alerts)
    changed = [
        {"b_id": a.row["b_id"], "b_detail": a.detail} for a in batch.alerts.values() if a.changed
    ]
    if changed:
        stmt = (
            update(_alerts)
            .where(_alerts.c.id == bindparam("b_id"))
            .values(detail=bindparam("b_detail"))
        )
        connection.execute(stmt, changed)


def _duplicate_flags(items: Sequence[Received], new_ids: set[uuid.UUID]) -> list[bool]:
    flags: list[bool] = []
    for item in items:
        message_id = getattr(item.message, "id", None)
        if item.kind in (Kind.EVENT, Kind.SURVEY) and isinstance(message_id, uuid.UUID):
            flags.append(message_id not in new_ids)
            new_ids.discard(message_id)  # the same id twice in one batch: the second is a copy
        else:
            flags.append(False)
    return flags


def adjust_open_alerts(session: Session, deltas: Iterable[tuple[str, int]]) -> None:
    """Add each delta to its device's open-alert count, in SQL so concurrent writers add up.

    One UPDATE … WHERE id IN (…) per distinct delta and chunk: a mass outage raising
    10,000 alerts costs a handful of statements, not 10,000.
    """
    by_delta: dict[int, list[str]] = {}
    for device_id, delta in deltas:
        if delta:
            by_delta.setdefault(delta, []).append(device_id)
    connection = session.connection()
    for delta, ids in by_delta.items():
        for start in range(0, len(ids), ID_CHUNK):
            connection.execute(
                update(_devices)
                .where(_devices.c.id.in_(ids[start : start + ID_CHUNK]))
                .values(open_alerts=_devices.c.open_alerts + delta)
            )
