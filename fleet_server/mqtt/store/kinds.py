"""How each kind of message changes a batch: device state, telemetry, alerts, events, answers."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from sqlalchemy import case, literal, update

from fleet_server.calls import quality as call_quality
from fleet_server.models import (
    CommandRecord,
    CounterUpdateRecord,
    UtcDateTime,
)
from fleet_server.mqtt.alert_rules import (
    DETAIL_MAX_CHARS,
    telemetry_conditions,
)
from fleet_server.mqtt.notify.vocab import AlertEvent
from fleet_server.mqtt.store.batch import (
    REASON_TELEMETRY,
    STATE_ONLINE,
    STATE_UNKNOWN,
    AlertTransition,
    Batch,
    DeviceRow,
    OpenAlert,
    Received,
)
from guichet import contract
from guichet.contract import Kind

logger = logging.getLogger(__name__)


# --- per kind ---------------------------------------------------------------------------
# Times (issue 12, finding 13): the server's receive time drives state, history order,
# staleness, alerts and retention; the counter's own clock (which may be a year off) is kept
# as reported. An event or a survey answer is dated by the counter only when it says its
# clock was synchronised when it stamped it (it may have waited in the outbox for days).


def occurred_at(at: datetime, received_at: datetime, synchronised: bool | None) -> datetime:
    """When an event or answer happened: the counter's time from a synchronised clock
    (never in the server's future), else the server's receive time. ``None`` (a counter
    from before ``clock_synchronised``) keeps the older rule: the earlier of the two."""
    if synchronised is False:
        return received_at
    return min(at, received_at)


def _transition(
    batch: Batch,
    device: DeviceRow,
    state: str,
    at: datetime,
    reason: str,
    reported_at: datetime | None = None,
) -> None:
    device.state = state
    device.state_since = at
    device.changes.update(state=state, state_since=at)
    batch.status_rows.append(
        {
            "device_id": device.id,
            "at": at,
            "state": state,
            "reason": reason,
            "reported_at": reported_at,
        }
    )


def _apply_status(batch: Batch, item: Received) -> None:
    status = item.message
    assert isinstance(status, contract.Status)
    device = batch.devices[item.device_id]
    if item.retained and not _retained_is_news(device, status):
        return
    device.status_reported_at = status.at
    device.status_reported_state = status.state.value
    device.changes.update(
        software_version=status.software_version,
        status_reported_at=status.at,
        status_reported_state=status.state.value,
    )
    # Finding 3: the counter's own site and name are kept as reported, never as its site
    # and name, which enrolment or an administrator set and which decide access and stats.
    if status.site:
        device.changes["reported_site"] = status.site
    if status.name:
        device.changes["reported_name"] = status.name
    if status.telemetry_interval_s is not None:
        device.changes["telemetry_interval_s"] = status.telemetry_interval_s
    if status.state is contract.Presence.ONLINE:
        device.changes["last_seen"] = item.received_at
    if device.state != status.state.value:
        # Stamped on arrival, a will as much as "online" (finding 16): the history's order
        # is the order the server learnt them in, whatever the counter's clock says.
        _transition(batch, device, status.state.value, item.received_at, status.reason, status.at)


def _retained_is_news(device: DeviceRow, status: contract.Status) -> bool:
    """A retained status replayed on subscription counts only if it is not the last one
    applied: compared by the counter's own time and state, never against the server's
    clock (a counter a year behind would otherwise never be believed again)."""
    if device.state == STATE_UNKNOWN or device.status_reported_at is None:
        return True
    return (status.at, status.state.value) != (
        device.status_reported_at,
        device.status_reported_state,
    )


def _apply_telemetry(batch: Batch, item: Received) -> None:
    tel = item.message
    assert isinstance(tel, contract.Telemetry)
    device = batch.devices[item.device_id]
    at = item.received_at
    device.changes.update(
        last_seen=at,
        last_telemetry_at=at,
        clock_synchronised=tel.clock_synchronised,
        clock_offset_s=(tel.at - at).total_seconds(),
    )
    device.telemetry = tel
    # Telemetry travels only while the counter is connected (QoS 0, never queued for us):
    # arriving, it says "online" even if the status that said so was missed (a fresh
    # session after a server restart, a broker outage).
    if device.state != STATE_ONLINE:
        _transition(batch, device, STATE_ONLINE, at, REASON_TELEMETRY, tel.at)
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


def _sync_alert(batch: Batch, device_id: str, kind: str, detail: str | None, at: datetime) -> None:
    """Raise, update or clear the one open alert of this kind for this device."""
    key = (device_id, kind)
    alert = batch.alerts.get(key)
    if detail is not None:
        detail = detail[:DETAIL_MAX_CHARS]
        if alert is None:
            row = {"device_id": device_id, "kind": kind, "detail": detail, "raised_at": at}
            row["cleared_at"] = None
            batch.new_alerts.append(row)
            batch.alerts[key] = OpenAlert(row=row, detail=detail)
            batch.alert_delta[device_id] += 1
            batch.transitions.append(
                AlertTransition(row, device_id, kind, detail, AlertEvent.RAISED, at)
            )
            logger.info("alert raised", extra={"device_id": device_id, "alert": kind})
        elif alert.detail != detail:
            alert.detail = alert.row["detail"] = detail
            alert.changed = "b_id" in alert.row
    elif alert is not None:
        if "b_id" in alert.row:
            batch.closed_alerts.append({"id": alert.row["b_id"], "cleared_at": at})
        else:
            alert.row["cleared_at"] = at  # raised and cleared within this batch
        del batch.alerts[key]
        batch.alert_delta[device_id] -= 1
        batch.transitions.append(
            AlertTransition(alert.row, device_id, kind, alert.detail, AlertEvent.CLEARED, at)
        )
        logger.info("alert cleared", extra={"device_id": device_id, "alert": kind})


def _apply_event(batch: Batch, item: Received) -> None:
    event = item.message
    assert isinstance(event, contract.Event)
    batch.devices[item.device_id].changes["last_seen"] = item.received_at
    batch.event_rows.append(
        {
            "id": event.id,
            "device_id": item.device_id,
            "at": occurred_at(event.at, item.received_at, event.clock_synchronised),
            "received_at": item.received_at,
            "reported_at": event.at,
            "kind": event.kind.value,
            "data": _finite(event.data, item.device_id),
        }
    )
    if event.kind is contract.EventKind.CALL_ENDED:  # its quality summary, on the call's row
        call_quality.attach(batch.session, item.device_id, event.data)


def _finite(data: dict[str, contract.Scalar], device_id: str) -> dict[str, contract.Scalar]:
    """An event's data without NaN or infinities (JSON has none: PostgreSQL would refuse the
    row, and the event with it); each one dropped is logged and stored as null."""
    bad = [k for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        logger.warning(
            "event values that are not numbers stored as null: %s",
            ", ".join(sorted(bad)),
            extra={"device_id": device_id},
        )
    return {k: None if k in bad else v for k, v in data.items()}


def _apply_survey(batch: Batch, item: Received) -> None:
    answer = item.message
    assert isinstance(answer, contract.SurveyAnswer)
    device = batch.devices[item.device_id]
    device.changes["last_seen"] = item.received_at
    batch.survey_rows.append(
        {
            "id": answer.id,
            "device_id": item.device_id,
            "at": occurred_at(answer.at, item.received_at, answer.clock_synchronised),
            "received_at": item.received_at,
            "reported_at": answer.at,
            "questionnaire_version": answer.questionnaire_version,
            "answers": dict(answer.answers),
            # For the statistics: the call's service, and the counter's site (as enrolled or
            # set by an administrator) when received.
            "service": answer.service,
            "site": device.site,
        }
    )


def _apply_command_ack(batch: Batch, item: Received) -> None:
    ack = item.message
    assert isinstance(ack, contract.CommandAck)
    batch.devices[item.device_id].changes["last_seen"] = item.received_at
    batch.session.execute(
        update(CommandRecord)
        .where(
            CommandRecord.request_id == ack.request_id,
            CommandRecord.device_id == item.device_id,  # a counter acks only its own commands
            CommandRecord.acked_at.is_(None),  # the first ack stands: a replay changes nothing
        )
        .values(
            acked_at=item.received_at,
            ok=ack.ok,
            detail=ack.detail,
            checks=[c.model_dump(mode="json") for c in ack.checks] if ack.checks else None,
        )
    )


def _apply_update_progress(batch: Batch, item: Received) -> None:
    """A software update's progress (issue 13): on the counter's row for the dashboard, and
    on its row in each rollout of that release (``counter_updates``), dated by the server."""
    progress = item.message
    assert isinstance(progress, contract.UpdateProgress)
    batch.devices[item.device_id].changes.update(
        last_seen=item.received_at,
        update_state=progress.state.value,
        update_release=progress.release,
        update_percent=progress.percent,
        update_reason=progress.reason,
        update_at=item.received_at,
    )
    if progress.release is not None:
        batch.session.execute(
            update(CounterUpdateRecord)
            .where(
                CounterUpdateRecord.device_id == item.device_id,
                CounterUpdateRecord.release == progress.release,
            )
            .values(
                state=progress.state.value,
                percent=progress.percent,
                reason=progress.reason,
                # Since it reached this state: a replayed message does not move it.
                since=case(
                    (CounterUpdateRecord.state == progress.state.value, CounterUpdateRecord.since),
                    # typed: a bare datetime in a CASE skips the column's UTC conversion
                    else_=literal(item.received_at, UtcDateTime()),
                ),
            )
        )
    logger.info(
        "update progress",
        extra={
            "device_id": item.device_id,
            "release": progress.release,
            "update_state": progress.state.value,
            "percent": progress.percent,
        },
    )


def _reject_kind(batch: Batch, item: Received) -> None:
    raise contract.ContractError(f"{item.kind.value} is not sent by counters")


APPLY = {
    Kind.STATUS: _apply_status,
    Kind.TELEMETRY: _apply_telemetry,
    Kind.EVENT: _apply_event,
    Kind.SURVEY: _apply_survey,
    Kind.CMD_ACK: _apply_command_ack,
    Kind.CMD: _reject_kind,
    Kind.CONFIG: _reject_kind,
    Kind.UPDATE: _apply_update_progress,
}
