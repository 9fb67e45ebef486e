"""The fleet server's MQTT ingest: every counter's messages into the database, exactly once.

This module is the connection: paho's network thread receives and queues; one writer thread
(:mod:`fleet_server.mqtt.writer`) decodes, stores a batch in one transaction and only then
acknowledges its QoS 1 messages (paho ``manual_ack``) through :meth:`Ingest._ack`. Commands
and configurations to counters go out over the same connection
(:mod:`fleet_server.mqtt.publisher`). The broker keeps our session (fixed client id, no
clean start), so whatever was received but not committed when the server died is delivered
again, and events and survey answers — inserted-or-ignored by id — are stored once.

``Client.ack`` only appends a PUBACK to paho's outgoing deque and wakes the network
thread through its socket pair (the same path ``publish`` takes from any thread), so the
writer calls it directly. A PUBACK must never reach a later connection for a message of an
earlier one (the broker may have reused that packet id): each message carries the
connection generation it arrived on, and only the current generation's are acknowledged;
the broker redelivers the others.
"""

from __future__ import annotations

import gc
import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import make_engine, make_session_factory, migrate
from fleet_server.metrics import Metrics
from fleet_server.mqtt import health
from fleet_server.mqtt.broker_link import LinkReporter
from fleet_server.mqtt.publisher import Publisher
from fleet_server.mqtt.writer import QUEUE_POLL_S, BatchWriter, Incoming
from fleet_server.settings import Settings
from guichet import contract
from guichet.mqtt_url import parse_mqtt_url

logger = logging.getLogger(__name__)

KEEPALIVE_S = 30  # the broker notices a dead fleet server within 45 s
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our queue through a week's outage
RECEIVE_MAXIMUM = 1000  # MQTT 5: unacknowledged QoS 1 messages in flight towards us
QUEUE_MAX_MESSAGES = 20_000  # then the network thread waits: backpressure to the broker
# paho's exponential reconnect backoff. One client per server, so trying every 2 s during
# an outage costs the broker nothing, and the fleet is seen again within 2 s of its return
# (a 30 s cap made the whole fleet wait up to 30 s: issue 12, finding 15).
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 2
STOP_TIMEOUT_S = 2.0  # stop() returns within this
SIGNAL_POLL_S = 1.0  # the standalone main thread wakes this often (signals interrupt it anyway)
# One filter for the whole tree rather than one per kind (``contract.subscription_all``):
# off-contract topics (unknown kind, ``guichet/v2/…``) must reach us to be counted, and
# overlapping filters make some brokers deliver a message once per matching filter.
SUBSCRIPTION = f"{contract.TOPIC_ROOT}/#"


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
        self._publisher = Publisher(self._connected_client)
        self._link = LinkReporter(sessions, settings.mqtt_client_id)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and start storing; returns at once."""
        if self._client is not None:
            raise RuntimeError("ingest already started")
        self._stopping.clear()
        host, port, tls = broker_address(self._settings.mqtt_url)
        client = self._make_client(tls)
        self._client = client
        writer = BatchWriter(
            self._settings, self._sessions, self._metrics, self._queue, self._stopping, self._ack
        )
        self._writer = threading.Thread(
            target=writer.run, name="guichet-ingest-writer", daemon=True
        )
        self._writer.start()
        self._link.start()
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
        self._link.stop(timeout=max(0.1, deadline - time.monotonic()))
        self._subscribed.clear()
        self._metrics.mqtt_connected.set(0)
        self._client = self._writer = None

    def send_command(self, device_id: str, command: contract.Command) -> None:
        """Publish a command to one counter (QoS 1); thread-safe."""
        self._publisher.send_command(device_id, command)

    def publish_config(self, device_id: str, config: contract.DeviceConfig) -> None:
        """Publish a counter's configuration, retained (QoS 1); thread-safe."""
        self._publisher.publish_config(device_id, config)

    def _connected_client(self) -> mqtt.Client | None:
        """The client while connected and subscribed: what publishing needs."""
        client = self._client
        return client if client is not None and self._subscribed.is_set() else None

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
        self._link.set(connected=True)
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
        self._link.set(connected=False)
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

    # --- writer thread (acknowledgements) ----------------------------------------------

    def _ack(self, batch: Sequence[Incoming]) -> None:
        """PUBACK, in the order received, every QoS 1 message of this connection."""
        client = self._client
        if client is None:
            return
        with self._generation_lock:
            for item in batch:
                if item.qos > 0 and item.generation == self._generation:
                    client.ack(item.mid, item.qos)


def _connect_properties() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) from ``mqtt://host:port`` or ``mqtts://host:port``."""
    address = parse_mqtt_url(url, paho_schemes=True)
    return address.host, address.port, address.tls


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
    gc.freeze()  # what start-up built lives on: out of every collection (docs/decisions.md)
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
