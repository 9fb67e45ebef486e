"""Writing a batch in bulk: one statement per table (or per distinct set of columns)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from fleet_server.mqtt.alert_rules import is_throttled, printer_detail
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.store import bulk
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
)
from guichet import contract
from guichet.contract import Kind

logger = logging.getLogger(__name__)


# --- writing ----------------------------------------------------------------------------


def write(batch: Batch, items: Sequence[Received]) -> list[bool]:
    """Every table in one statement, all sent together (:class:`.bulk.Writes`)."""
    session = batch.session
    adjust_open_alerts(session, batch.alert_delta.items())
    _insert_new_alerts(batch)
    _notify(batch)
    writes = bulk.Writes(session)
    _update_devices(writes, batch.devices.values())
    _write_alerts(writes, batch)
    writes.append(STATUS_CHANGES, batch.status_rows)
    writes.append(SAMPLES, batch.sample_rows)
    events = writes.insert_new(EVENTS, batch.event_rows, key="id")
    answers = writes.insert_new(SURVEYS, batch.survey_rows, key="id")
    writes.run()
    return _duplicate_flags(items, events.keys | answers.keys)


def _update_devices(writes: bulk.Writes, devices: Iterable[DeviceRow]) -> None:
    """One UPDATE per distinct set of changed columns (usually one or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for device in devices:
        if device.telemetry is not None:
            device.changes.update(telemetry_columns(device.telemetry))
        if not device.changes:
            continue
        groups.setdefault(tuple(sorted(device.changes)), []).append(
            {"id": device.id, **device.changes}
        )
    for rows in groups.values():
        writes.update(DEVICES, rows)


def _insert_new_alerts(batch: Batch) -> None:
    """The alerts this batch raised, before the other writes: the notifications' outbox
    names them by id. Rare (an alert is raised once), so a statement of its own."""
    if batch.new_alerts:
        returning = insert(ALERTS).returning(ALERTS.c.id, sort_by_parameter_order=True)
        ids = batch.session.connection().execute(returning, batch.new_alerts).scalars().all()
        for row, alert_id in zip(batch.new_alerts, ids, strict=True):
            row["id"] = alert_id


def _write_alerts(writes: bulk.Writes, batch: Batch) -> None:
    writes.update(ALERTS, batch.closed_alerts)
    changed = [
        {"id": a.row["b_id"], "detail": a.detail} for a in batch.alerts.values() if a.changed
    ]
    writes.update(ALERTS, changed)


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
        "last_telemetry": bulk.JsonText(tel.model_dump_json()),
    }
