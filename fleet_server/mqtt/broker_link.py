"""The ingest's own connection to the broker, shared through the database (finding 15).

A broker outage is not a fleet outage: while the server itself has no broker it learns
nothing about any counter, so it must neither turn counters silent nor raise an alert per
counter. Each ingest writes its link (connected or not, since when) to ``broker_links`` on
every change and every ``HEARTBEAT_S``, from its own thread; the health check (in the same
process or in the web app's) reads it back with :func:`current`, raises one "broker
unreachable" server alert, and counts a counter's silence only from the broker's return.
A row not refreshed for ``STALE_AFTER_S`` belongs to an ingest that is gone: ignored.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import BrokerLink, ServerAlert
from fleet_server.mqtt.store import insert_ignore
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # an ingest rewrites its row this often
STALE_AFTER_S = 3 * HEARTBEAT_S  # …and a row older than this is an ingest that died
ALERT_BROKER = "broker"  # ServerAlert.kind
SERVER_ALERT_LABELS = {ALERT_BROKER: "Courtier MQTT injoignable"}  # French, as shown
BROKER_DETAIL = "le serveur n'a plus de liaison avec le courtier MQTT"

_links: Table = BrokerLink.__table__  # type: ignore[assignment]
SERVER_ALERTS: Table = ServerAlert.__table__  # type: ignore[assignment]
_server_alerts = SERVER_ALERTS


@dataclass(frozen=True, slots=True)
class LinkView:
    """The server's broker link as the ingests last reported it."""

    connected: bool  # at least one running ingest is connected
    since: datetime  # in that state since (connected: the latest return; else: the loss)


def current(session: Session, now: datetime) -> LinkView | None:
    """The link of the running ingests; None when none reports (no knowledge)."""
    fresh = now - timedelta(seconds=STALE_AFTER_S)
    rows = session.execute(
        select(_links.c.connected, _links.c.since).where(_links.c.updated_at >= fresh)
    ).all()
    if not rows:
        return None
    up = [since for connected, since in rows if connected]
    if up:
        return LinkView(True, max(up))
    return LinkView(False, min(since for _, since in rows))


def sync_broker_alert(
    session: Session, link: LinkView | None, now: datetime, after: timedelta
) -> tuple[int, int]:
    """Raise the one "broker unreachable" alert once lost for ``after``; clear it back."""
    if link is not None and not link.connected:
        if link.since > now - after:
            return 0, 0
        row = {"kind": ALERT_BROKER, "detail": BROKER_DETAIL, "raised_at": now}
        raised = insert_ignore(session, _server_alerts, [{**row, "cleared_at": None}], "kind")
        if raised:
            logger.warning("alert raised: the broker is unreachable")
        return len(raised), 0
    result = session.connection().execute(
        update(_server_alerts)
        .where(_server_alerts.c.kind == ALERT_BROKER, _server_alerts.c.cleared_at.is_(None))
        .values(cleared_at=now)
    )
    cleared = result.rowcount
    if cleared:
        logger.info("alert cleared: the broker is back")
    return 0, cleared


class LinkReporter:
    """The ingest's side: records connection changes and writes them from its own thread
    (paho's callbacks must not wait for the database)."""

    def __init__(self, sessions: sessionmaker[Session], client_id: str) -> None:
        self._sessions = sessions
        self._client_id = client_id
        self._lock = threading.Lock()
        self._connected = False
        self._since = utcnow()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, connected: bool) -> None:
        """From any thread: the link is now up or down."""
        with self._lock:
            if connected != self._connected:
                self._connected, self._since = connected, utcnow()
        self._changed.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="guichet-broker-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop writing and forget this ingest's row: a stopped ingest knows nothing."""
        self._stopping.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            with self._sessions.begin() as session:
                session.execute(delete(_links).where(_links.c.client_id == self._client_id))
        except Exception:  # the database may be what is down; the row goes stale anyway
            logger.warning("broker link row not removed at stop", exc_info=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._changed.clear()
            try:
                self._write()
            except Exception:  # the database may be down too: retry at the next beat
                logger.warning("broker link state not written", exc_info=True)
            self._changed.wait(HEARTBEAT_S)

    def _write(self) -> None:
        with self._lock:
            connected, since = self._connected, self._since
        values = {"connected": connected, "since": since, "updated_at": utcnow()}
        with self._sessions.begin() as session:
            result = session.connection().execute(
                update(_links).where(_links.c.client_id == self._client_id).values(values)
            )
            if not result.rowcount:
                session.execute(insert(_links).values(client_id=self._client_id, **values))
