"""Read-side queries shared by the dashboard and the JSON API.

The fleet table and the alerts page by keyset (:mod:`fleet_server.paging`) — no OFFSET, so
page 200 of 10,000 counters costs what page 1 costs; the fleet's filters use the indexed
``state``, ``site`` and ``open_alerts`` columns, and its text search is a bounded scan of one
table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, defer

from fleet_server import paging
from fleet_server.models import (
    Alert,
    Device,
    EventRecord,
    ServerAlert,
    StatusChange,
    TelemetrySample,
)
from guichet.contract import DeviceState

logger = logging.getLogger(__name__)

STATES = tuple(DeviceState)
DEFAULT_PAGE_SIZE = paging.DEFAULT_PAGE_SIZE
MAX_PAGE_SIZE = paging.MAX_PAGE_SIZE
BadCursorError = paging.BadCursorError
MAX_SEARCH_LENGTH = paging.MAX_SEARCH_LENGTH
RECENT_CLEARED_ALERTS = 100  # cleared alerts shown under the open ones


@dataclass(frozen=True)
class FleetFilter:
    state: str | None = None
    site: str | None = None
    q: str | None = None
    alerts_only: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.state:
            conds.append(Device.state == self.state)
        if self.site:
            conds.append(Device.site == self.site)
        if self.alerts_only:
            conds.append(Device.open_alerts > 0)
        if self.q and self.q.strip():
            conds.append(paging.contains(self.q, Device.id, Device.name, Device.site))
        return conds


FLEET_ORDER = paging.Ordering(Device.site, Device.id)


def fleet_page(
    session: Session,
    flt: FleetFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> paging.Page[Device]:
    """One page of counters ordered by site then id; ``after``/``before`` are cursors.
    The total is exact: it is bounded by the fleet."""
    stmt = select(Device).options(defer(Device.last_telemetry)).where(*flt.conditions())
    return paging.keyset_page(
        session, stmt, FLEET_ORDER, _device, after=after, before=before, limit=limit
    )


def _device(row: paging.AnyRow) -> Device:
    device: Device = row[0]
    return device


def state_counts(session: Session, site: str | None = None) -> dict[str, int]:
    """How many counters are in each state (every state present, zero if none); of one site
    only when ``site`` is given (a reception user's summary)."""
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    query = select(Device.state, func.count()).group_by(Device.state)
    if site is not None:
        query = query.where(Device.site == site)
    for state, count in session.execute(query):
        counts[state] = counts.get(state, 0) + count
    return counts


def sites(session: Session) -> list[str]:
    return [s for s in session.scalars(select(Device.site).distinct().order_by(Device.site)) if s]


def open_alert_count(session: Session, site: str | None = None) -> int:
    """Open alerts: the counters' (of ``site`` only, when given) and, fleet-wide, the
    server's own (the broker unreachable)."""
    query = select(func.count()).select_from(Alert).where(Alert.cleared_at.is_(None))
    if site is not None:
        query = query.join(Device, Device.id == Alert.device_id).where(Device.site == site)
        return session.scalar(query) or 0
    server = select(func.count()).select_from(ServerAlert).where(ServerAlert.cleared_at.is_(None))
    return (session.scalar(query) or 0) + (session.scalar(server) or 0)


def server_alerts(session: Session, limit: int = RECENT_CLEARED_ALERTS) -> list[ServerAlert]:
    """The server's own alerts, open ones first, then the most recently raised."""
    stmt = (
        select(ServerAlert)
        .order_by(ServerAlert.cleared_at.is_not(None), ServerAlert.raised_at.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


# --- one counter ------------------------------------------------------------------------


def status_history(session: Session, device_id: str, limit: int = 50) -> list[StatusChange]:
    stmt = (
        select(StatusChange)
        .where(StatusChange.device_id == device_id)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class EventPage:
    events: list[EventRecord]
    page: int
    has_next: bool


def events_page(session: Session, device_id: str, page: int = 1, size: int = 25) -> EventPage:
    """A counter's events, newest first (offset paging on the (device_id, at) index)."""
    page = max(1, page)
    stmt = (
        select(EventRecord)
        .where(EventRecord.device_id == device_id)
        .order_by(EventRecord.at.desc(), EventRecord.id)
        .offset((page - 1) * size)
        .limit(size + 1)
    )
    rows = list(session.scalars(stmt))
    return EventPage(rows[:size], page, len(rows) > size)


def telemetry_series(
    session: Session, device_id: str, since: datetime
) -> list[tuple[datetime, float | None, float]]:
    """(time, CPU temperature, load) samples of one counter since a time, oldest first."""
    stmt = (
        select(TelemetrySample.at, TelemetrySample.cpu_temperature_c, TelemetrySample.load1)
        .where(TelemetrySample.device_id == device_id, TelemetrySample.at >= since)
        .order_by(TelemetrySample.at)
    )
    return [(at, temp, load) for at, temp, load in session.execute(stmt)]


# --- alerts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    site: str
    name: str


def alerts_overview(
    session: Session, *, cleared_limit: int = RECENT_CLEARED_ALERTS, device_id: str | None = None
) -> tuple[list[AlertRow], list[AlertRow]]:
    """(open alerts newest first, recently cleared alerts newest first) with their counter."""
    stmt = select(Alert, Device.site, Device.name).join(Device, Device.id == Alert.device_id)
    if device_id is not None:
        stmt = stmt.where(Alert.device_id == device_id)
    open_stmt = stmt.where(Alert.cleared_at.is_(None)).order_by(Alert.raised_at.desc())
    cleared_stmt = (
        stmt.where(Alert.cleared_at.is_not(None))
        .order_by(Alert.cleared_at.desc())
        .limit(cleared_limit)
    )
    return _alert_rows(session, open_stmt), _alert_rows(session, cleared_stmt)


def _alert_rows(session: Session, stmt: Any) -> list[AlertRow]:
    return [AlertRow(alert, site, name) for alert, site, name in session.execute(stmt)]


ALERT_LISTS = ("open", "cleared")  # the alerts page's two lists
OPEN_ALERTS_ORDER = paging.Ordering(Alert.raised_at, Alert.id, descending=True)
CLEARED_ALERTS_ORDER = paging.Ordering(Alert.cleared_at, Alert.id, descending=True)


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a page of the alerts page shows: open (newest first) or cleared (most
    recently cleared first), of one kind, site or counter, or whose counter matches ``q``."""

    cleared: bool = False
    kind: str | None = None
    site: str | None = None
    device_id: str | None = None
    q: str | None = None

    @property
    def on_counters(self) -> bool:
        """Whether it filters on the counters' columns (a join then needed to count)."""
        return bool(self.site or (self.q and self.q.strip()))

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [
            Alert.cleared_at.is_not(None) if self.cleared else Alert.cleared_at.is_(None)
        ]
        if self.kind:
            conds.append(Alert.kind == self.kind)
        if self.device_id:
            conds.append(Alert.device_id == self.device_id)
        if self.site:
            conds.append(Device.site == self.site)
        if self.q and self.q.strip():
            conds.append(paging.contains(self.q, Device.id, Device.name))
        return conds


def alerts_page(
    session: Session,
    flt: AlertFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> paging.Page[AlertRow]:
    """One page of alerts with their counter's site and name. Open alerts are counted (a few
    per counter at most); cleared ones, which pile up with time, are not."""
    stmt = (
        select(Alert, Device.site, Device.name)
        .join(Device, Device.id == Alert.device_id)
        .where(*flt.conditions())
    )
    order = CLEARED_ALERTS_ORDER if flt.cleared else OPEN_ALERTS_ORDER
    return paging.keyset_page(
        session,
        stmt,
        order,
        _alert_row,
        after=after,
        before=before,
        limit=limit,
        counted=not flt.cleared,
        count_stmt=None if flt.on_counters else select(Alert).where(*flt.conditions()),
    )


def _alert_row(row: paging.AnyRow) -> AlertRow:
    return AlertRow(row[0], row[1], row[2])
