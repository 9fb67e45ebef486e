"""The rollout runner (docs/updates.md): every ``rollout_check_s``, for each running rollout,
one transaction that loads it, calls ``rollout.step`` with what its counters reported, saves
the result, and records the ``update`` orders of the counters whose maintenance window is
open now (online, closed, not in a call, in the night window if one is set); then, after the
commit, the orders are published through the ingest like remote support's commands (an ack
faster than the commit still finds its row). An order that could not leave is withdrawn.

A rollout that stops itself at its threshold raises an ``update_stopped`` alert on the
counter whose failure crossed it, and is written to the audit log, as is its completion.

A counter is ordered again only when its previous order was refused (acked ``ok=false``: a
citizen was there) ``REFUSED_RETRY`` ago, or went unanswered for ``ORDER_RETRY``; a counter
that took its order reports progress, and ``step`` never offers a counter with a state.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import CommandRecord, CounterUpdateRecord, Device, Release, RolloutRecord
from fleet_server.mqtt.actions import Sender
from fleet_server.mqtt.publisher import CommandNotSentError
from fleet_server.security import audit
from fleet_server.settings import Settings
from fleet_server.updates import alerts, records
from fleet_server.updates.eligibility import install_verdicts
from fleet_server.updates.rollout import RolloutState, failures_in_wave, step
from fleet_server.updates.windows import Verdict
from guichet import contract
from guichet.contract import DeviceState
from guichet.updates import FAILURES, UPDATE_COMMAND, UpdateOrder

logger = logging.getLogger(__name__)

ORDER_RETRY = timedelta(minutes=15)  # an unanswered order is sent again after this
# A refused order (a citizen at the counter, or a counter that cannot update yet: « commande
# inconnue ») is sent again after this, not at every check: no order and audit row per 30 s.
REFUSED_RETRY = timedelta(minutes=5)
ORDER_TIMEOUT = timedelta(minutes=10)  # the command's own deadline (commands table)
MAX_ORDERS_PER_TICK = 200  # a large wave is ordered over a few periods, not in one burst


@dataclass(frozen=True, slots=True)
class Order:
    device_id: str
    rollout_id: int
    command: contract.Command


@dataclass(frozen=True, slots=True)
class TickResult:
    orders: list[Order]
    verdicts: dict[str, Verdict]  # why the others were not ordered (for the logs and tests)


def bundle_url(settings: Settings, version: str) -> str | None:
    if not settings.public_url:
        return None
    return settings.public_url.rstrip("/") + records.BUNDLE_PATH + version


def tick(
    session: Session,
    settings: Settings,
    now: datetime,
    in_call: Callable[[str], bool],
    *,
    can_order: bool = True,
) -> TickResult:
    """Advance every running rollout; the orders to publish once committed (none when
    ``can_order`` is false: no broker to carry them)."""
    query = select(RolloutRecord).where(RolloutRecord.state == RolloutState.RUNNING.value)
    orders: list[Order] = []
    verdicts: dict[str, Verdict] = {}
    for record in session.scalars(query.order_by(RolloutRecord.id).with_for_update()):
        release = session.get(Release, record.release_id)
        assert release is not None
        rows = records.counter_rows(session, record.id)
        before = records.to_rollout(record)
        decided = step(before, records.counter_updates(rows), now)
        records.save(record, decided.rollout)
        if decided.rollout.state is not before.state:
            _ended(session, settings, record, release, rows, now)
            continue
        wanted = _to_order(session, rows, decided.to_order, now) if can_order else []
        if not wanted:
            continue
        found = install_verdicts(session, wanted, now, in_call, records.policy_of(record))
        verdicts.update(found)
        allowed = [d for d in wanted if found[d].allowed][: MAX_ORDERS_PER_TICK - len(orders)]
        orders += _order(session, settings, record, release, rows, allowed, now)
    return TickResult(orders, verdicts)


def _to_order(
    session: Session, rows: Sequence[CounterUpdateRecord], offered: Sequence[str], now: datetime
) -> list[str]:
    """Of the counters ``step`` offers: online, and not waiting on a recent order."""
    offered_set = set(offered)
    pending = [r for r in rows if r.device_id in offered_set]
    if not pending:
        return []
    online = set(
        session.scalars(
            select(Device.id).where(
                Device.id.in_([r.device_id for r in pending]),
                Device.state == DeviceState.ONLINE,
                Device.revoked_at.is_(None),
            )
        )
    )
    refused = _refused(session, [r.request_id for r in pending if r.request_id is not None])
    return [
        r.device_id
        for r in pending
        if r.device_id in online
        and (
            r.ordered_at is None
            or now - r.ordered_at >= ORDER_RETRY
            or (r.request_id in refused and now - r.ordered_at >= REFUSED_RETRY)
        )
    ]


def _refused(session: Session, request_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not request_ids:
        return set()
    query = select(CommandRecord.request_id).where(
        CommandRecord.request_id.in_(request_ids), CommandRecord.ok.is_(False)
    )
    return set(session.scalars(query))


def _order(
    session: Session,
    settings: Settings,
    record: RolloutRecord,
    release: Release,
    rows: Sequence[CounterUpdateRecord],
    device_ids: Sequence[str],
    now: datetime,
) -> list[Order]:
    url = bundle_url(settings, release.version)
    if url is None or not device_ids:
        if url is None:
            logger.error("GUICHET_PUBLIC_URL unset: no update order can be sent")
        return []
    args = UpdateOrder(
        release=release.version,
        bundle_url=url,
        size=release.size,
        sha256=release.sha256,
        compatible=release.compatible,
    ).to_args()
    by_device = {r.device_id: r for r in rows}
    orders = []
    for device_id in device_ids:
        command = contract.Command(
            request_id=uuid.uuid4(), at=now, name=UPDATE_COMMAND, args=dict(args)
        )
        session.add(
            CommandRecord(
                request_id=command.request_id, device_id=device_id, name=UPDATE_COMMAND,
                args=dict(args), sent_at=now, expires_at=now + ORDER_TIMEOUT,
                actor=audit.SYSTEM_ACTOR,
            )
        )  # fmt: skip
        row = by_device[device_id]
        row.request_id, row.ordered_at = command.request_id, now
        audit.record(
            session, audit.SYSTEM_ACTOR, "update.order", device_id,
            rollout_id=record.id, release=release.version, request_id=str(command.request_id),
        )  # fmt: skip
        orders.append(Order(device_id, record.id, command))
    return orders


def _ended(
    session: Session,
    settings: Settings,
    record: RolloutRecord,
    release: Release,
    rows: Sequence[CounterUpdateRecord],
    now: datetime,
) -> None:
    """The rollout stopped itself or completed: its alert and its audit entry."""
    reason = record.reason or ""
    if record.state == RolloutState.STOPPED.value:
        culprit = _culprit(record, rows)
        if culprit is not None:
            detail = f"Version {release.version} : {reason}"
            window = timedelta(minutes=settings.notify_digest_min)
            alerts.raise_stopped(session, culprit, detail, now, window)
        action = "rollout.stop"
        logger.warning("rollout stopped", extra={"rollout_id": record.id, "reason": reason})
    else:
        action = "rollout.complete"
        logger.info("rollout ended", extra={"rollout_id": record.id, "state": record.state})
    audit.record(
        session, audit.SYSTEM_ACTOR, action, release.version, rollout_id=record.id, reason=reason
    )


def _culprit(record: RolloutRecord, rows: Sequence[CounterUpdateRecord]) -> str | None:
    """The current wave's most recent failure (counted since the last resume)."""
    rollout = records.to_rollout(record)
    if failures_in_wave(rollout, records.counter_updates(rows)) == 0:
        return None
    wave = set(rollout.waves[rollout.current_wave])
    failed = [
        r
        for r in rows
        if r.device_id in wave
        and r.state in {s.value for s in FAILURES}
        and r.since is not None
        and (rollout.failures_since is None or r.since >= rollout.failures_since)
    ]
    return max(failed, key=lambda r: (r.since, r.device_id)).device_id if failed else None


def publish(sender: Sender, orders: Sequence[Order]) -> list[Order]:
    """Hand the orders to the broker; those that could not leave."""
    failed = []
    for order in orders:
        try:
            sender.send_command(order.device_id, order.command)
        except CommandNotSentError:
            failed.append(order)
    return failed


def withdraw(session: Session, orders: Sequence[Order]) -> None:
    """Orders that never left: the counter is offered again at the next period."""
    for order in orders:
        session.execute(
            update(CounterUpdateRecord)
            .where(
                CounterUpdateRecord.rollout_id == order.rollout_id,
                CounterUpdateRecord.device_id == order.device_id,
                CounterUpdateRecord.request_id == order.command.request_id,
            )
            .values(request_id=None, ordered_at=None)
        )
        session.execute(
            update(CommandRecord)
            .where(CommandRecord.request_id == order.command.request_id)
            .values(acked_at=order.command.at, ok=False, detail="non envoyée : courtier absent")
        )


def run_once(
    sessions: sessionmaker[Session],
    settings: Settings,
    sender: Sender | None,
    in_call: Callable[[str], bool],
    now: datetime,
) -> TickResult:
    """One period: decide and commit, then publish (no broker: nothing is ordered)."""
    with sessions.begin() as session:
        result = tick(session, settings, now, in_call, can_order=sender is not None)
    if sender is not None and result.orders:
        failed = publish(sender, result.orders)
        if failed:
            with sessions.begin() as session:
                withdraw(session, failed)
        logger.info(
            "update orders sent",
            extra={"sent": len(result.orders) - len(failed), "failed": len(failed)},
        )
    return result
