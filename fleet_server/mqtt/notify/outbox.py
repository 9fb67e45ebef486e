"""The outbox: one delivery row per (alert event, target), added to the session that raises
or clears the alert, so the notification commits — or rolls back — with the alert itself.
Nothing is sent here; :mod:`.worker` does, later. Costs one small query (the active
targets) per batch that changed an alert, and nothing more when nobody is to be told."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet_server.models import Device, NotificationDelivery, NotificationTarget
from fleet_server.mqtt.notify.quiet import quiet_until
from fleet_server.mqtt.notify.vocab import URGENT_KINDS, AlertEvent, Channel, DeliveryStatus
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

DELIVERIES: Table = NotificationDelivery.__table__  # type: ignore[assignment]
ID_CHUNK = 1_000  # device ids per IN (…) list
ROWS_CHUNK = 1_000  # delivery rows per INSERT


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised or cleared, as the notification will tell it."""

    alert_id: int
    device_id: str
    kind: str
    detail: str
    event: AlertEvent
    at: datetime


def enqueue(session: Session, changes: Sequence[AlertChange], digest_window: timedelta) -> int:
    """Add the deliveries these changes call for; the number of rows. No commit."""
    if not changes:
        return 0
    targets = list(
        session.scalars(select(NotificationTarget).where(NotificationTarget.active.is_(True)))
    )
    if not targets:
        return 0
    devices = _devices(session, sorted({c.device_id for c in changes}))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for change in changes:
        site, name = devices.get(change.device_id, ("", ""))
        for target in targets:
            if (target.site and target.site != site) or (
                target.kinds and change.kind not in target.kinds
            ):
                continue
            due, held = _due(target, change, digest_window)
            rows.append(
                {
                    "target_id": target.id,
                    "alert_id": change.alert_id,
                    "event": change.event.value,
                    "at": change.at,
                    "device_id": change.device_id,
                    "device_name": name,
                    "site": site,
                    "kind": change.kind,
                    "detail": change.detail,
                    "status": DeliveryStatus.PENDING.value,
                    "held": held,
                    "attempts": 0,
                    "next_attempt_at": due,
                    "created_at": now,
                }
            )
    for start in range(0, len(rows), ROWS_CHUNK):
        insert_ignore(session, rows[start : start + ROWS_CHUNK])
    if rows:
        logger.info("notifications queued", extra={"deliveries": len(rows)})
    return len(rows)


def _due(
    target: NotificationTarget, change: AlertChange, digest_window: timedelta
) -> tuple[datetime, bool]:
    """When to send, and whether quiet hours hold it. Webhooks go at once; e-mail waits for
    the end of quiet hours (unless urgent), or gathers for a digest."""
    if target.channel != Channel.EMAIL:
        return change.at, False
    if change.kind not in URGENT_KINDS:
        end = quiet_until(target.quiet_start, target.quiet_end, change.at)
        if end is not None:
            return end, True
    if target.digest:
        return change.at + digest_window, False
    return change.at, False


def _devices(session: Session, ids: list[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), ID_CHUNK):
        rows = session.execute(
            select(Device.id, Device.site, Device.name).where(
                Device.id.in_(ids[start : start + ID_CHUNK])
            )
        )
        found.update((i, (site or "", name or "")) for i, site, name in rows)
    return found


def insert_ignore(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert, skipping a (alert, event, target) already queued: a replayed batch or a
    replica that got there first does not tell anyone twice."""
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(DELIVERIES).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(DELIVERIES).on_conflict_do_nothing()
    session.connection().execute(stmt, rows)
