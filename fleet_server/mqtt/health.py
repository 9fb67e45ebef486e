"""The fleet server's periodic health check, and chart downsampling.

:func:`run_checks` runs every ``settings.staleness_check_s`` (from the ingest's loop or the
web app). Every step is a few set-based statements whose ``WHERE`` clauses use indexed
columns, so one run costs milliseconds at 10,000 counters:

- staleness: an ``online`` counter with no telemetry for ``silent_after_intervals`` × its own
  interval becomes ``silent`` (a half-open TCP link can hide a dead counter for a long time);
- presence alerts: ``offline``/``silent`` for longer than its site's threshold
  (:mod:`.thresholds`, else ``alert_offline_after_min``) raises an alert of that kind; it
  clears once the counter is ``online`` again;
- the server's own broker link (:mod:`.broker_link`): while it is lost nobody turns silent
  and no presence alert is raised, but one "broker unreachable" alert after the same delay;
  once it is back, silence and absence count from its return (counters reconnect, their
  statuses and telemetry set their states again);
- retention: telemetry samples older than ``telemetry_retention_days`` are deleted;
- gauges: counters by state and open alerts.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    Table,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from fleet_server.metrics import Metrics
from fleet_server.models import Alert, Device, StatusChange, TelemetrySample
from fleet_server.mqtt import broker_link, queries, thresholds
from fleet_server.mqtt.alert_rules import PRESENCE_ALERTS, AlertKind
from fleet_server.mqtt.broker_link import LinkView
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.notify.vocab import AlertEvent
from fleet_server.mqtt.store import (
    DEVICE_STATES,
    STATE_ONLINE,
    STATE_SILENT,
    adjust_open_alerts,
    insert_ignore,
)
from fleet_server.settings import Settings
from guichet.contract import StatusReason, utcnow

logger = logging.getLogger(__name__)

REASON_NO_TELEMETRY = StatusReason.NO_TELEMETRY.value  # the server declares silence
PRUNE_CHUNK_ROWS = 10_000  # rows deleted per statement, so one prune never locks for long
READ_CHUNK_IDS = 1_000  # ids per IN (…) list, under SQLite's parameter limit
PRUNE_MAX_CHUNKS = 50  # per run; a huge backlog is worked off over several runs
STOP_TIMEOUT_S = 2.0  # HealthLoop.stop waits this long for a check in progress
PRESENCE_DETAIL = {
    AlertKind.OFFLINE: "hors ligne",
    AlertKind.SILENT: "muet : plus de télémétrie",
}

_devices: Table = Device.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
_samples: Table = TelemetrySample.__table__  # type: ignore[assignment]
_changes: Table = StatusChange.__table__  # type: ignore[assignment]


def run_checks(
    sessions: sessionmaker[Session], settings: Settings, metrics: Metrics, now: datetime
) -> None:
    """One pass of every check; each step commits on its own."""
    with sessions.begin() as session:
        link = broker_link.current(session, now)
        silenced = mark_silent(session, settings, now, link)
    with sessions.begin() as session:
        raised, cleared = sync_presence_alerts(session, settings, now, link)
        after = timedelta(minutes=settings.alert_offline_after_min)
        broker_link.sync_broker_alert(session, link, now, after)
    pruned = prune_telemetry(sessions, settings, now)
    with sessions() as session:
        update_gauges(session, metrics, link)
    if silenced or raised or cleared or pruned:
        logger.info(
            "health check: %d silent, %d alerts raised, %d cleared, %d samples pruned",
            silenced,
            raised,
            cleared,
            pruned,
        )


class HealthLoop:
    """Runs :func:`run_checks` every ``settings.staleness_check_s`` in a daemon thread."""

    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, metrics: Metrics
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="guichet-health", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_checks(self._sessions, self._settings, self._metrics, utcnow())
            except Exception:  # the loop outlives a database hiccup
                logger.exception("health check failed")
            self._stop.wait(self._settings.staleness_check_s)


def _heard_since_before(link: LinkView | None, cutoff: datetime) -> bool:
    """Could the server have heard from counters since ``cutoff``? Not while it has no
    broker, nor if the broker came back after ``cutoff`` (no knowledge: as before)."""
    return link is None or (link.connected and link.since < cutoff)


def mark_silent(
    session: Session, settings: Settings, now: datetime, link: LinkView | None = None
) -> int:
    """Turn stale ``online`` counters ``silent``, with a status-history row each."""
    intervals = session.scalars(
        select(_devices.c.telemetry_interval_s).where(_devices.c.state == STATE_ONLINE).distinct()
    ).all()
    silenced: list[str] = []
    for interval_s in intervals:  # a handful of distinct intervals in a fleet
        cutoff = now - timedelta(seconds=interval_s * settings.silent_after_intervals)
        if not _heard_since_before(link, cutoff):
            continue
        stmt = (
            update(_devices)
            .where(
                _devices.c.state == STATE_ONLINE,
                _devices.c.telemetry_interval_s == interval_s,
                or_(_devices.c.state_since.is_(None), _devices.c.state_since < cutoff),
                or_(
                    _devices.c.last_telemetry_at.is_(None),
                    _devices.c.last_telemetry_at < cutoff,
                ),
            )
            .values(state=STATE_SILENT, state_since=now)
            .returning(_devices.c.id)
        )
        silenced.extend(session.execute(stmt).scalars())
    if silenced:
        rows = [
            {"device_id": i, "at": now, "state": STATE_SILENT, "reason": REASON_NO_TELEMETRY}
            for i in silenced
        ]
        session.execute(insert(_changes), rows)
    return len(silenced)


def sync_presence_alerts(
    session: Session, settings: Settings, now: datetime, link: LinkView | None = None
) -> tuple[int, int]:
    """Raise offline/silent alerts that lasted too long, clear those back online; their
    notifications are queued in the same transaction (:mod:`.notify.outbox`)."""
    raised: list[outbox.AlertChange] = []
    own = thresholds.by_site(session)
    for minutes, group in thresholds.groups(own, settings.alert_offline_after_min):
        cutoff = now - timedelta(minutes=minutes)
        if _heard_since_before(link, cutoff):
            in_group = _devices.c.site.in_(group) if group is not None else _other_sites(own)
            raised.extend(_raise_presence_alerts(session, cutoff, now, in_group))
    back_online = exists().where(
        _devices.c.id == _alerts.c.device_id, _devices.c.state == STATE_ONLINE
    )
    a = _alerts.c
    clear_stmt = (
        update(_alerts)
        .where(a.cleared_at.is_(None), a.kind.in_(PRESENCE_ALERTS), back_online)
        .values(cleared_at=now)
        .returning(a.id, a.device_id, a.kind, a.detail)
    )
    cleared = [
        outbox.AlertChange(i, device_id, kind, detail, AlertEvent.CLEARED, now)
        for i, device_id, kind, detail in session.execute(clear_stmt)
    ]
    deltas: Counter[str] = Counter(c.device_id for c in raised)
    deltas.subtract(c.device_id for c in cleared)
    adjust_open_alerts(session, deltas.items())
    window = timedelta(minutes=settings.notify_digest_min)
    outbox.enqueue(session, [*raised, *cleared], window)
    return len(raised), len(cleared)


def _other_sites(own: dict[str, int]) -> ColumnElement[bool]:
    """Counters of the sites without a threshold of their own (and of no site at all)."""
    site = _devices.c.site
    return or_(site.is_(None), site.not_in(sorted(own))) if own else true()


def _raise_presence_alerts(
    session: Session, cutoff: datetime, now: datetime, in_group: ColumnElement[bool]
) -> list[outbox.AlertChange]:
    """Two indexed reads and one bulk insert-or-ignore; the alerts actually raised.

    The "no open alert yet" difference is taken here rather than by a NOT EXISTS: on a
    table without statistics yet, PostgreSQL planned that anti-join as a nested loop
    (2.5 s at 10,000 counters). The partial unique index settles any race with a replica.
    """
    d, a = _devices.c, _alerts.c
    absent = session.execute(
        select(d.id, d.state).where(d.state.in_(PRESENCE_ALERTS), d.state_since < cutoff, in_group)
    )
    open_now = session.execute(
        select(a.device_id, a.kind).where(a.cleared_at.is_(None), a.kind.in_(PRESENCE_ALERTS))
    )
    already = {(device_id, kind) for device_id, kind in open_now}
    rows = [
        {
            "device_id": device_id,
            "kind": state,
            "detail": PRESENCE_DETAIL[state],
            "raised_at": now,
            "cleared_at": None,
        }
        for device_id, state in absent
        if (device_id, state) not in already
    ]
    ids = sorted(insert_ignore(session, _alerts, rows, key="id"))
    found: list[outbox.AlertChange] = []
    for start in range(0, len(ids), READ_CHUNK_IDS):
        chunk = ids[start : start + READ_CHUNK_IDS]
        query = select(a.id, a.device_id, a.kind, a.detail).where(a.id.in_(chunk))
        found.extend(
            outbox.AlertChange(i, device_id, kind, detail, AlertEvent.RAISED, now)
            for i, device_id, kind, detail in session.execute(query)
        )
    return found


def prune_telemetry(sessions: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    """Delete samples older than the retention, in chunks (each its own transaction)."""
    cutoff = now - timedelta(days=settings.telemetry_retention_days)
    total = 0
    for _ in range(PRUNE_MAX_CHUNKS):
        chunk = select(_samples.c.id).where(_samples.c.at < cutoff).limit(PRUNE_CHUNK_ROWS)
        with sessions.begin() as session:
            result = session.connection().execute(
                delete(_samples).where(_samples.c.id.in_(chunk.scalar_subquery()))
            )
            deleted = result.rowcount
        total += deleted
        if deleted < PRUNE_CHUNK_ROWS:
            break
    return total


def update_gauges(session: Session, metrics: Metrics, link: LinkView | None) -> None:
    rows = session.execute(select(_devices.c.state, func.count()).group_by(_devices.c.state))
    counts: dict[str, int] = dict(rows.all())
    for state in DEVICE_STATES:
        metrics.devices.labels(state=state).set(counts.get(state, 0))
    metrics.open_alerts.set(queries.open_alert_count(session))
    set_broker_gauge(metrics, link)


def set_broker_gauge(metrics: Metrics, link: LinkView | None) -> None:
    """``guichet_broker_connected``: 1 or 0 as the ingests report (unchanged while none does)."""
    if link is not None:
        metrics.broker_connected.set(1 if link.connected else 0)


def downsample(
    samples: Sequence[tuple[datetime, float | None]], buckets: int
) -> list[tuple[datetime, float]]:
    """Average a time series into at most ``buckets`` equal time spans, for a chart.

    Points with ``None`` are skipped; empty buckets are left out; each result is
    (start of its bucket, mean), in time order. Input need not be sorted.
    """
    points = sorted((t, v) for t, v in samples if v is not None)
    if not points or buckets < 1:
        return []
    start, end = points[0][0], points[-1][0]
    span = (end - start) / buckets
    if span <= timedelta(0):
        return [(start, sum(v for _, v in points) / len(points))]
    sums: dict[int, tuple[float, int]] = {}
    for t, v in points:
        index = min(int((t - start) / span), buckets - 1)
        total, count = sums.get(index, (0.0, 0))
        sums[index] = (total + v, count + 1)
    return [(start + span * i, total / count) for i, (total, count) in sorted(sums.items())]
