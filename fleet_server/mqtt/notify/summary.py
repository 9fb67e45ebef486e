"""The daily summary e-mail: counters down, alerts open and yesterday's calls, for one
target's site (or every site), once a day from ``notify_summary_hour`` (Paris time).

It goes through the outbox like an alert: :func:`enqueue_due` adds one delivery per
(target, day) — event ``summary``, the day as ``alert_id`` (``20270315``) — and the unique
index on (alert_id, event, target_id) makes a second server, a restart or the next pass
add nothing. The figures are read when the message is built (:func:`figures`), so a retry
tells the state as it is then; yesterday's calls do not change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from fleet_server.models import (
    Alert,
    CallRecord,
    Device,
    NotificationDelivery,
    NotificationTarget,
)
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.notify.quiet import PARIS
from fleet_server.mqtt.notify.vocab import AlertEvent, Channel, DeliveryStatus
from guichet.contract import DeviceState

logger = logging.getLogger(__name__)

DOWN_STATES = (
    DeviceState.OFFLINE.value,
    DeviceState.SILENT.value,
)  # a counter nobody can use right now
LIST_ROWS = 50  # counters and alerts listed by name; the rest counted


def day_key(day: date) -> int:
    """The day as the delivery's ``alert_id``: ``20270315``."""
    return day.year * 10_000 + day.month * 100 + day.day


def enqueue_due(session: Session, hour: int, now: datetime) -> int:
    """From ``hour`` (Paris) on, one summary delivery per e-mail target that asked for it,
    for today; those already queued are skipped (and a row another server adds at the same
    moment is ignored). The number of rows offered. No commit."""
    paris = now.astimezone(PARIS)
    if paris.hour < hour:
        return 0
    today = paris.date()
    queued = exists().where(  # the unique index's own columns: an index lookup per target
        NotificationDelivery.alert_id == day_key(today),
        NotificationDelivery.event == AlertEvent.SUMMARY,
        NotificationDelivery.target_id == NotificationTarget.id,
    )
    targets = session.execute(
        select(NotificationTarget.id, NotificationTarget.site).where(
            NotificationTarget.active.is_(True),
            NotificationTarget.summary.is_(True),
            NotificationTarget.channel == Channel.EMAIL,
            ~queued,
        )
    ).all()
    if not targets:
        return 0  # every pass after the first of the day: one read, no write
    rows = [
        {
            "target_id": target_id,
            "alert_id": day_key(today),
            "event": AlertEvent.SUMMARY.value,
            "at": now,
            "device_id": "",
            "device_name": "",
            "site": site,
            "kind": "",
            "detail": f"Résumé du {today:%d/%m/%Y}",
            "status": DeliveryStatus.PENDING.value,
            "held": False,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for target_id, site in targets
    ]
    outbox.insert_ignore(session, rows)
    return len(rows)


@dataclass(frozen=True)
class Figures:
    """What a summary says, for one site ("": every site)."""

    site: str
    day: date  # the summary's day; its calls are those of the day before
    down: list[tuple[str, str, str, datetime | None]] = field(default_factory=list)
    down_total: int = 0  # (name, site, state, since) listed, at most LIST_ROWS
    alerts: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    alerts_total: int = 0  # (counter name, site, kind, raised at) listed
    calls: int = 0
    answered: int = 0


def figures(session: Session, site: str, day: date) -> Figures:
    """The counters down and alerts open now, and the calls of the day before ``day``."""
    in_site = [Device.site == site] if site else []
    down_where = [Device.revoked_at.is_(None), Device.state.in_(DOWN_STATES), *in_site]
    down_total = session.scalar(select(func.count()).select_from(Device).where(*down_where))
    down = session.execute(
        select(func.coalesce(Device.name, Device.id), Device.site, Device.state, Device.state_since)
        .where(*down_where)
        .order_by(Device.site, Device.name, Device.id)
        .limit(LIST_ROWS)
    ).all()
    alert_where = [Alert.cleared_at.is_(None), *in_site]
    alerts_query = select(Alert).join(Device, Device.id == Alert.device_id).where(*alert_where)
    alerts_total = session.scalar(select(func.count()).select_from(alerts_query.subquery()))
    alerts = session.execute(
        select(func.coalesce(Device.name, Device.id), Device.site, Alert.kind, Alert.raised_at)
        .join(Device, Device.id == Alert.device_id)
        .where(*alert_where)
        .order_by(Alert.raised_at, Alert.id)
        .limit(LIST_ROWS)
    ).all()
    start = datetime.combine(day - timedelta(days=1), time(), PARIS)
    end = datetime.combine(day, time(), PARIS)
    call_where = [CallRecord.requested_at >= start, CallRecord.requested_at < end]
    if site:
        call_where.append(CallRecord.site == site)
    calls, answered = session.execute(
        select(func.count(), func.count(CallRecord.answered_at)).where(*call_where)
    ).one()
    return Figures(
        site=site,
        day=day,
        down=[(n or "", s or "", st, since) for n, s, st, since in down],
        down_total=down_total or 0,
        alerts=[(n or "", s or "", k, at) for n, s, k, at in alerts],
        alerts_total=alerts_total or 0,
        calls=calls,
        answered=answered,
    )
