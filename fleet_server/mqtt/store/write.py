"""Writing a batch in bulk: one statement per table (or per distinct set of columns)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from fleet_server.mqtt.alert_rules import is_throttled, printer_detail
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.store.batch import (
    ALERTS,
    DEVICES,
    EVENTS,
    ID_CHUNK,
    SAMPLES,
    STATUS_CHANGES,
    SURVEYS,
    Batch,
    DeviceRow,
    Received,
    insert_ignore,
)
from guichet import contract
from guichet.contract import Kind

logger = logging.getLogger(__name__)


# --- writing ----------------------------------------------------------------------------


def write(batch: Batch, items: Sequence[Received]) -> list[bool]:
    session = batch.session
    _update_devices(session, batch.devices.values())
    _write_alerts(batch)
    adjust_open_alerts(session, batch.alert_delta.items())
    _notify(batch)
    if batch.status_rows:
        session.execute(insert(STATUS_CHANGES), batch.status_rows)
    if batch.sample_rows:
        session.execute(insert(SAMPLES), batch.sample_rows)
    new_ids = insert_ignore(session, EVENTS, batch.event_rows, key="id")
    new_ids |= insert_ignore(session, SURVEYS, batch.survey_rows, key="id")
    return _duplicate_flags(items, new_ids)


def _update_devices(session: Session, devices: Iterable[DeviceRow]) -> None:
    """One executemany UPDATE per distinct set of changed columns (usually one or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for device in devices:
        if device.telemetry is not None:
            device.changes.update(telemetry_columns(device.telemetry))
        if not device.changes:
            continue
        columns = tuple(sorted(device.changes))
        row = {f"v_{name}": value for name, value in device.changes.items()}
        row["b_id"] = device.id
        groups.setdefault(columns, []).append(row)
    for columns, rows in groups.items():
        stmt = (
            update(DEVICES)
            .where(DEVICES.c.id == bindparam("b_id"))
            .values({name: bindparam(f"v_{name}") for name in columns})
        )
        session.connection().execute(stmt, rows)


def _write_alerts(batch: Batch) -> None:
    connection = batch.session.connection()
    if batch.new_alerts:
        # Their ids, in order, for the notifications' outbox.
        returning = insert(ALERTS).returning(ALERTS.c.id, sort_by_parameter_order=True)
        ids = connection.execute(returning, batch.new_alerts).scalars().all()
        for row, alert_id in zip(batch.new_alerts, ids, strict=True):
            row["id"] = alert_id
    if batch.closed_alerts:
        stmt = (
            update(ALERTS)
            .where(ALERTS.c.id == bindparam("b_id"))
            .values(cleared_at=bindparam("b_at"))
        )
        connection.execute(stmt, batch.closed_alerts)
    changed = [
        {"b_id": a.row["b_id"], "b_detail": a.detail} for a in batch.alerts.values() if a.changed
    ]
    if changed:
        stmt = (
            update(ALERTS)
            .where(ALERTS.c.id == bindparam("b_id"))
            .values(detail=bindparam("b_detail"))
        )
        connection.execute(stmt, changed)


def _notify(batch: Batch) -> None:
    """Queue the notifications of this batch's raised and cleared alerts, in its transaction."""
    if not batch.transitions:
        return
    changes = [
        outbox.AlertChange(t.alert_id, t.device_id, t.kind, t.detail, t.event, t.at)
        for t in batch.transitions
    ]
    window = timedelta(minutes=batch.settings.notify_digest_min)
    outbox.enqueue(batch.session, changes, window)


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
                update(DEVICES)
                .where(DEVICES.c.id.in_(ids[start : start + ID_CHUNK]))
                .values(open_alerts=DEVICES.c.open_alerts + delta)
            )


def telemetry_columns(tel: contract.Telemetry) -> dict[str, Any]:
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
