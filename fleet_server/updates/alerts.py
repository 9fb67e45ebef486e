"""The alert a rollout raises when it stops itself at its error threshold (docs/updates.md):
the existing per-counter alerts (``alerts`` table, one open per counter and kind), kind
``update_stopped``, on the counter whose failure crossed the threshold; its notifications
are queued in the same transaction, like every alert's (``mqtt.notify.outbox``). It is
cleared when an administrator resumes or cancels the rollout."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleet_server.models import Alert, CounterUpdateRecord
from fleet_server.mqtt.alert_rules import DETAIL_MAX_CHARS, AlertKind
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.notify.vocab import AlertEvent
from fleet_server.mqtt.store.write import adjust_open_alerts

KIND = AlertKind.UPDATE_STOPPED.value


def raise_stopped(
    session: Session, device_id: str, detail: str, now: datetime, digest_window: timedelta
) -> bool:
    """Open the alert on ``device_id`` (unless one is open already); True if raised."""
    already = session.scalar(
        select(Alert.id).where(
            Alert.device_id == device_id, Alert.kind == KIND, Alert.cleared_at.is_(None)
        )
    )
    if already is not None:
        return False
    alert = Alert(device_id=device_id, kind=KIND, detail=detail[:DETAIL_MAX_CHARS], raised_at=now)
    session.add(alert)
    session.flush()
    adjust_open_alerts(session, [(device_id, 1)])
    change = outbox.AlertChange(alert.id, device_id, KIND, alert.detail, AlertEvent.RAISED, now)
    outbox.enqueue(session, [change], digest_window)
    return True


def clear_stopped(session: Session, rollout_id: int, now: datetime) -> int:
    """Clear the open ``update_stopped`` alerts of this rollout's counters; how many."""
    counters = select(CounterUpdateRecord.device_id).where(
        CounterUpdateRecord.rollout_id == rollout_id
    )
    cleared = session.execute(
        update(Alert)
        .where(Alert.kind == KIND, Alert.cleared_at.is_(None), Alert.device_id.in_(counters))
        .values(cleared_at=now)
        .returning(Alert.id, Alert.device_id, Alert.detail)
        .execution_options(synchronize_session=False)
    ).all()
    adjust_open_alerts(session, [(device_id, -1) for _id, device_id, _detail in cleared])
    changes = [
        outbox.AlertChange(i, device_id, KIND, detail, AlertEvent.CLEARED, now)
        for i, device_id, detail in cleared
    ]
    outbox.enqueue(session, changes, timedelta(0))
    return len(cleared)
