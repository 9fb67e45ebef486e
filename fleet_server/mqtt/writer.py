"""The ingest's writer thread: decode a batch, store it in one transaction, then acknowledge.

Messages arrive on a queue filled by paho's network thread (:mod:`fleet_server.mqtt.ingest`);
a batch is whatever queued during the last commit. Only once it is committed are its QoS 1
messages acknowledged (through the ``ack`` callable the ingest gives, which drops those of an
earlier connection). While the database is unreachable the batch is retried, acknowledging
nothing; a batch the database refuses is stored one message at a time so one bad row does not
block the others.

Malformed messages are counted by reason, logged without their payload, and acknowledged
so they are not redelivered forever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.metrics import Metrics
from fleet_server.mqtt import store
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import ContractError

logger = logging.getLogger(__name__)

BATCH_MAX_MESSAGES = 500  # per transaction; a batch is whatever queued during the last commit
QUEUE_POLL_S = 0.1  # how often a waiting thread looks at the stop flag
DB_RETRY_MIN_S, DB_RETRY_MAX_S = 0.5, 10.0  # while the database is unreachable
TOPIC_LOG_CHARS = 200  # topics are chosen by clients: log a bounded prefix

# metrics.messages_rejected{reason}
REJECT_TOO_LARGE = "too-large"
REJECT_NOT_JSON = "not-json"
REJECT_INVALID = "invalid-payload"
REJECT_UNKNOWN_TOPIC = "unknown-topic"
REJECT_UNKNOWN_VERSION = "unknown-version"
REJECT_STORE_ERROR = "store-error"


class DatabaseUnavailableError(Exception):
    """The database cannot be reached: retry later, acknowledge nothing."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as paho delivered it, tagged with the connection it came on."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retained: bool
    generation: int
    received_at: datetime


class BatchWriter:
    """Drains the queue in batches: decode, store in one transaction, then ``ack``."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        metrics: Metrics,
        incoming: queue.Queue[Incoming],
        stopping: threading.Event,
        ack: Callable[[Sequence[Incoming]], None],
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._metrics = metrics
        self._queue = incoming
        self._stopping = stopping
        self._ack = ack

    def run(self) -> None:
        """The thread's body: until ``stopping`` is set."""
        while not self._stopping.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                self._handle(batch)
            except DatabaseUnavailableError:
                return  # only raised once stopping; the broker keeps the batch
            except Exception:  # never let the writer die: log, count and carry on
                logger.exception("ingest batch failed; it will be redelivered")
                self._metrics.ingest_errors.inc()

    def _next_batch(self) -> list[Incoming]:
        try:
            batch = [self._queue.get(timeout=QUEUE_POLL_S)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_MAX_MESSAGES:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[Incoming]) -> None:
        decoded: list[tuple[Incoming, store.Received]] = []
        for item in batch:
            try:
                received = decode(item)
            except ContractError as exc:
                self._reject(item, reject_reason(exc), str(exc))
                continue
            if received is not None:
                decoded.append((item, received))
        delay = DB_RETRY_MIN_S
        while decoded:
            try:
                self._store(decoded)
                break
            except DatabaseUnavailableError:
                logger.warning("database unavailable; retrying in %.1f s", delay)
                if self._stopping.wait(delay):
                    raise
                delay = min(delay * 2, DB_RETRY_MAX_S)
        self._ack(batch)

    def _store(self, decoded: list[tuple[Incoming, store.Received]]) -> None:
        received = [r for _, r in decoded]
        try:
            with self._sessions.begin() as session:
                flags: list[bool | None] = list(
                    store.apply_batch(session, received, self._settings)
                )
        except Exception:  # one bad row must not block the others: retry one by one
            self._metrics.ingest_errors.inc()
            logger.warning("batch of %d failed; storing one by one", len(received), exc_info=True)
            flags = [self._store_one(item, r) for item, r in decoded]
        self._count(received, flags)

    def _store_one(self, item: Incoming, received: store.Received) -> bool | None:
        """One message in its own transaction: its duplicate flag, or None if refused."""
        try:
            with self._sessions.begin() as session:
                return store.apply(session, received, self._settings)
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_transient(exc):
                raise DatabaseUnavailableError(str(exc.orig)) from exc
            self._reject(item, REJECT_STORE_ERROR, type(exc.orig).__name__)
        except Exception as exc:  # a message the store cannot take: refuse it, keep going
            logger.exception("storing a %s message failed", received.kind.value)
            self._reject(item, REJECT_STORE_ERROR, type(exc).__name__)
        return None

    def _count(self, received: Sequence[store.Received], flags: Sequence[bool | None]) -> None:
        now = time.time()
        stored: Counter[str] = Counter()
        for r, duplicate in zip(received, flags, strict=True):
            if duplicate is None:
                continue
            if duplicate:
                self._metrics.duplicates.inc()
                continue
            stored[r.kind.value] += 1
            at = getattr(r.message, "at", None)
            if isinstance(at, datetime) and not r.retained:  # a replayed status is not lag
                self._metrics.ingest_lag.observe(max(0.0, now - at.timestamp()))
        for kind, n in stored.items():
            self._metrics.messages_ingested.labels(kind=kind).inc(n)

    def _reject(self, item: Incoming, reason: str, detail: str) -> None:
        self._metrics.messages_rejected.labels(reason=reason).inc()
        logger.warning(
            "rejected MQTT message on %r: %s (%s)",
            item.topic[:TOPIC_LOG_CHARS],
            reason,
            detail,
            extra={"topic": item.topic[:TOPIC_LOG_CHARS], "reason": reason},
        )


def decode(item: Incoming) -> store.Received | None:
    """Validate topic and payload against the contract; raises ContractError.

    None for the server's own messages to counters (``cmd``, retained ``config``), which
    the catch-all subscription also brings back: they are acknowledged and skipped.
    """
    device_id, kind = contract.parse_topic(item.topic)
    if not contract.KINDS[kind].from_device:
        return None  # before the size check: a counter's config may exceed 64 KiB
    if len(item.payload) > contract.MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload too large ({len(item.payload)} bytes)")
    message = contract.decode(kind, item.payload)
    return store.Received(
        device_id=device_id,
        kind=kind,
        message=message,
        received_at=item.received_at,
        retained=item.retained,
    )


def reject_reason(exc: ContractError) -> str:
    """A short, bounded label for metrics from the contract's error text."""
    text = str(exc)
    if text.startswith("payload too large"):
        return REJECT_TOO_LARGE
    if text.startswith("unknown protocol version"):
        return REJECT_UNKNOWN_VERSION
    if text.startswith(("unknown topic", "invalid device id", "unknown message kind")):
        return REJECT_UNKNOWN_TOPIC
    if ": Invalid JSON" in text:
        return REJECT_NOT_JSON
    if ": v: " in text:
        return REJECT_UNKNOWN_VERSION
    return REJECT_INVALID


def _is_transient(exc: DBAPIError) -> bool:
    """Connection trouble or a locked SQLite file, not a problem with this message."""
    return isinstance(exc, OperationalError | InterfaceError)
