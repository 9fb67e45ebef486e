"""The fleet server's MQTT ingest: every counter's messages into the database, exactly once.

Two threads: paho's network thread receives and queues; one writer thread decodes,
stores a batch in one transaction and only then acknowledges its QoS 1 messages
(paho ``manual_ack``). The broker keeps our session (fixed client id, no clean start),
so whatever was received but not committed when the server died is delivered again,
and events and survey answers — inserted-or-ignored by id — are stored once.

``Client.ack`` only appends a PUBACK to paho's outgoing deque and wakes the network
thread through its socket pair (the same path ``publish`` takes from any thread), so the
writer calls it directly. A PUBACK must never reach a later connection for a message of an
earlier one (the broker may have reused that packet id): each message carries the
connection generation it arrived on, and only the current generation's are acknowledged;
the broker redelivers the others.

Malformed messages are counted by reason, logged without their payload, and acknowledged
so they are not redelivered forever.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import make_engine, make_session_factory, migrate
from fleet_server.errors import FleetError
from fleet_server.metrics import Metrics
from fleet_server.mqtt import health, store
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import ContractError

logger = logging.getLogger(__name__)

KEEPALIVE_S = 30  # the broker notices a dead fleet server within 45 s
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our queue through a week's outage
RECEIVE_MAXIMUM = 1000  # MQTT 5: unacknowledged QoS 1 messages in flight towards us
BATCH_MAX_MESSAGES = 500  # per transaction; a batch is whatever queued during the last commit
QUEUE_MAX_MESSAGES = 20_000  # then the network thread waits: backpressure to the broker
QUEUE_POLL_S = 0.1  # how often a waiting thread looks at the stop flag
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30  # paho's exponential reconnect backoff
DB_RETRY_MIN_S, DB_RETRY_MAX_S = 0.5, 10.0  # while the database is unreachable
STOP_TIMEOUT_S = 2.0  # stop() returns within this
SIGNAL_POLL_S = 1.0  # the standalone main thread wakes this often (signals interrupt it anyway)
TOPIC_LOG_CHARS = 200  # topics are chosen by clients: log a bounded prefix
DEFAULT_MQTT_PORT, DEFAULT_MQTTS_PORT = 1883, 8883
# One filter for the whole tree rather than one per kind (``contract.subscription_all``):
# off-contract topics (unknown kind, ``guichet/v2/…``) must reach us to be counted, and
# overlapping filters make some brokers deliver a message once per matching filter.
SUBSCRIPTION = f"{contract.TOPIC_ROOT}/#"

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


class Ingest:
    """Subscribes to the whole fleet and stores every counter's messages."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], metrics: Metrics
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._metrics = metrics
        self._queue: queue.Queue[Incoming] = queue.Queue(maxsize=QUEUE_MAX_MESSAGES)
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._subscribe_mid: int | None = None
        self._client: mqtt.Client | None = None
        self._writer: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and start storing; returns at once."""
        if self._client is not None:
            raise RuntimeError("ingest already started")
        self._stopping.clear()
        host, port, tls = broker_address(self._settings.mqtt_url)
        client = self._make_client(tls)
        self._client = client
        self._writer = threading.Thread(
            target=self._write_loop, name="guichet-ingest-writer", daemon=True
        )
        self._writer.start()
        if self._settings.mqtt_protocol == "5":
            client.connect_async(
                host, port, KEEPALIVE_S, clean_start=False, properties=_connect_properties()
            )
        else:
            client.connect_async(host, port, KEEPALIVE_S)
        client.loop_start()
        logger.info("ingest connecting to %s:%d (MQTT %s)", host, port, self._protocol_name)

    def stop(self) -> None:
        """Stop within STOP_TIMEOUT_S; what was not committed stays with the broker."""
        client, writer = self._client, self._writer
        if client is None or writer is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        self._stopping.set()
        writer.join(timeout=max(0.0, deadline - time.monotonic() - 0.5))
        if writer.is_alive():
            logger.warning("ingest writer still busy at stop; its batch will be redelivered")
        client.disconnect()  # queued after the last PUBACKs, so they go out first
        client.loop_stop()
        self._subscribed.clear()
        self._metrics.mqtt_connected.set(0)
        self._client = self._writer = None

    def send_command(self, device_id: str, command: contract.Command) -> None:
        """Publish a command to one counter (QoS 1); paho's publish is thread-safe."""
        client = self._client
        if client is None or not self._subscribed.is_set():
            raise CommandNotSentError("the broker is not connected")
        info = client.publish(
            contract.topic(device_id, contract.Kind.CMD), contract.encode(command), qos=1
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise CommandNotSentError(f"publish failed ({info.rc})")

    def publish_config(self, device_id: str, config: contract.DeviceConfig) -> None:
        """Publish a counter's configuration, retained (QoS 1): it gets the latest one on
        every connect. Thread-safe like ``send_command``."""
        client = self._client
        if client is None or not self._subscribed.is_set():
            raise CommandNotSentError("the broker is not connected")
        info = client.publish(
            contract.topic(device_id, contract.Kind.CONFIG),
            contract.encode(config),
            qos=contract.QOS[contract.Kind.CONFIG],
            retain=True,
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise CommandNotSentError(f"publish failed ({info.rc})")

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed (the broker acknowledged our subscription)."""
        return self._subscribed.wait(timeout)

    @property
    def _protocol_name(self) -> str:
        return "5" if self._settings.mqtt_protocol == "5" else "3.1.1"

    def _make_client(self, tls: bool) -> mqtt.Client:
        v5 = self._settings.mqtt_protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._settings.mqtt_client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        if self._settings.mqtt_username:
            client.username_pw_set(self._settings.mqtt_username, self._settings.mqtt_password)
        if tls or self._settings.mqtt_ca_file:
            client.tls_set(ca_certs=self._settings.mqtt_ca_file)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    # --- network thread -----------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the ingest: %s", reason_code)
            return
        with self._generation_lock:
            self._generation += 1
        self._metrics.mqtt_connected.set(1)
        logger.info("ingest connected (session present: %s)", flags.session_present)
        _result, self._subscribe_mid = client.subscribe(SUBSCRIPTION, contract.QOS_AT_LEAST_ONCE)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused the ingest's subscriptions: %s", ", ".join(refused))
            return
        self._subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._generation_lock:  # from now on, nothing received so far is acknowledged
            self._generation += 1
        self._subscribed.clear()
        self._metrics.mqtt_connected.set(0)
        if not self._stopping.is_set():
            logger.warning("ingest disconnected from the broker: %s; reconnecting", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            name = msg.topic
        except UnicodeDecodeError:
            name = ""  # rejected as an unknown topic by the writer
        item = Incoming(
            topic=name,
            payload=bytes(msg.payload),
            qos=msg.qos,
            mid=msg.mid,
            retained=bool(msg.retain),
            generation=self._generation,
            received_at=contract.utcnow(),
        )
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=QUEUE_POLL_S)
                return
            except queue.Full:
                continue

    # --- writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
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

    def _ack(self, batch: Sequence[Incoming]) -> None:
        """PUBACK, in the order received, every QoS 1 message of this connection."""
        client = self._client
        if client is None:
            return
        with self._generation_lock:
            for item in batch:
                if item.qos > 0 and item.generation == self._generation:
                    client.ack(item.mid, item.qos)


# --- decoding ---------------------------------------------------------------------------


class CommandNotSentError(FleetError):
    """A command (or a counter's configuration) could not be handed to the broker."""


def decode(item: Incoming) -> store.Received | None:
    """Validate topic and payload against the contract; raises ContractError.

    None for the server's own messages to counters (``cmd``, retained ``config``), which
    the catch-all subscription also brings back: they are acknowledged and skipped.
    """
    device_id, kind = contract.parse_topic(item.topic)
    if kind not in contract.DEVICE_TO_SERVER:
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


def _connect_properties() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) from ``mqtt://host:port`` or ``mqtts://host:port``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    port = parts.port or (DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT)
    return parts.hostname or "127.0.0.1", port, tls


# --- standalone process -----------------------------------------------------------------


def run_standalone(settings: Settings) -> int:
    """Migrate, ingest and run the health checks until SIGTERM/SIGINT (``guichet fleet ingest``)."""
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    metrics = Metrics()
    stop = threading.Event()
    checks = health.HealthLoop(sessions, settings, metrics)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    ingest = Ingest(settings, sessions, metrics)
    ingest.start()
    checks.start()
    try:
        while not stop.wait(SIGNAL_POLL_S):
            pass
    finally:
        checks.stop()
        ingest.stop()
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m fleet_server.mqtt.ingest`, used by tests
    import sys

    from guichet.logs import setup_logging

    setup_logging()
    sys.exit(run_standalone(Settings()))
