"""Apply validated contract messages to the database, inside a session the caller commits.

One call to :func:`apply_batch` handles many messages in arrival order with a handful of
statements (:mod:`.batch` loads, :mod:`.kinds` applies each message, :mod:`.write` writes):
the devices concerned are created (insert-or-ignore) and loaded once, their
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
from collections.abc import Sequence

from sqlalchemy.orm import Session

from fleet_server.mqtt.store import bulk
from fleet_server.mqtt.store.batch import (
    DEVICE_STATES,
    STATE_OFFLINE,
    STATE_ONLINE,
    STATE_SILENT,
    STATE_UNKNOWN,
    Received,
    insert_ignore,
    load,
)
from fleet_server.mqtt.store.kinds import APPLY
from fleet_server.mqtt.store.write import adjust_open_alerts, write
from fleet_server.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "DEVICE_STATES",
    "STATE_OFFLINE",
    "STATE_ONLINE",
    "STATE_SILENT",
    "STATE_UNKNOWN",
    "Received",
    "adjust_open_alerts",
    "apply",
    "apply_batch",
    "insert_ignore",
]


def apply(session: Session, item: Received, settings: Settings) -> bool:
    """Apply one message; True when it was a duplicate (an event or answer already stored)."""
    return apply_batch(session, [item], settings)[0]


def apply_batch(session: Session, items: Sequence[Received], settings: Settings) -> list[bool]:
    """Apply messages in order; one flag per message, True for a duplicate. No commit."""
    if not items:
        return []
    bulk.plan_each(session)
    batch = load(session, settings, items)
    for item in items:
        APPLY[item.kind](batch, item)
    return write(batch, items)
