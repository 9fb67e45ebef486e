"""How each kind of message changes a batch: device state, telemetry, alerts, events, answers."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update

from fleet_server.models import (
    CommandRecord,
)
from fleet_server.mqtt.alert_rules import (
    DETAIL_MAX_CHARS,
    telemetry_conditions,
)
from fleet_server.mqtt.store.batch import (
    REASON_TELEMETRY,
    STATE_ONLINE,
    STATE_SILENT,
    STATE_UNKNOWN,
    Batch,
    DeviceRow,
    OpenAlert,
    Received,
)
from guichet import contract
from guichet.contract import Kind

logger = logging.getLogger(__name__)


# --- per kind ---------------------------------------------------------------------------


def _event_time(at: datetime, received_at: datetime) -> datetime:
    """The counter's timestamp, but never in the server's future (a fast clock)."""
    return min(at, received_at)


def _transition(batch: Batch, device: DeviceRow, state: str, at: datetime, reason: str) -> None:
    device.state = state
    device.state_since = at
    device.changes.update(state=state, state_since=at)
    batch.status_rows.append({"device_id": device.id, "at": at, "state": state, "reason": reason})


def _apply_status(batch: Batch, item: Received) -> None:
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


def _retained_is_news(device: DeviceRow, at: datetime) -> bool:
    """A retained status replayed on subscription counts only if newer than what we know."""
    if device.state == STATE_UNKNOWN or device.state_since is None:
        return True
    return at > device.state_since


def _apply_telemetry(batch: Batch, item: Received) -> None:
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


def _apply_event(batch: Batch, item: Received) -> None:
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


def _apply_survey(batch: Batch, item: Received) -> None:
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


def _apply_command_ack(batch: Batch, item: Received) -> None:
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
}
