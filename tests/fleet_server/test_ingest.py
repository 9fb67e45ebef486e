"""The MQTT ingest against a real Mosquitto, into SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.metrics import Metrics
from fleet_server.models import Device, EventRecord, TelemetrySample
from fleet_server.mqtt.ingest import Ingest, broker_address
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import Kind
from tests.fleet_server.storage_support import (
    WAIT_TIMEOUT_S,
    event,
    make_settings,
    status,
    telemetry,
    wait_for,
)
from tests.support.mosquitto import Broker

REPO = Path(__file__).resolve().parents[2]
DEVICE = "pays-meteorite-01"
CRASH_EVENTS = 2_000
CRASH_AFTER_STORED = 300  # SIGKILL once this many of the first half are in the database
STOP_BUDGET_S = 2.0


@contextmanager
def running(
    settings: Settings, sessions: sessionmaker[Session], metrics: Metrics
) -> Iterator[Ingest]:
    ingest = Ingest(settings, sessions, metrics)
    ingest.start()
    try:
        assert ingest.wait_connected(WAIT_TIMEOUT_S)
        yield ingest
    finally:
        ingest.stop()


@contextmanager
def publisher(broker: Broker, protocol: MQTTProtocolVersion = mqtt.MQTTv5) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    assert client.connect("127.0.0.1", broker.port) == mqtt.MQTT_ERR_SUCCESS
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def send(
    client: mqtt.Client,
    device_id: str,
    kind: Kind,
    message: contract.WireMessage,
    *,
    retain: bool = False,
) -> mqtt.MQTTMessageInfo:
    topic = contract.topic(device_id, kind)
    return client.publish(topic, contract.encode(message), qos=1, retain=retain)


def count(sessions: sessionmaker[Session], model: type[object]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_flow_into_the_database(
    broker: Broker, db_url: str, sessions: sessionmaker[Session], protocol: str
) -> None:
    settings = make_settings(mqtt_url=broker.url, database_url=db_url, mqtt_protocol=protocol)
    metrics = Metrics()
    with running(settings, sessions, metrics), publisher(broker) as pub:
        send(pub, DEVICE, Kind.STATUS, status(), retain=True)
        send(pub, DEVICE, Kind.TELEMETRY, telemetry(cpu_temperature_c=47.0))
        send(pub, DEVICE, Kind.EVENT, event())
        wait_for(lambda: count(sessions, EventRecord) == 1)
        wait_for(lambda: count(sessions, TelemetrySample) == 1)
    with sessions() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        assert (device.state, device.cpu_temperature_c) == ("online", 47.0)
    for kind in ("status", "telemetry", "event"):
        assert sample(metrics, "guichet_messages_ingested_total", kind=kind) == 1
    assert sample(metrics, "guichet_ingest_lag_seconds_count") == 3


def test_malformed_messages_are_counted_logged_and_acknowledged(
    broker: Broker,
    db_url: str,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(mqtt_url=broker.url, database_url=db_url)
    metrics = Metrics()
    wrong_types = json.dumps({"v": 1, "state": 5, "software_version": [], "at": "yesterday"})
    secret = "do-not-log-me"
    bad: list[tuple[str, bytes]] = [
        (contract.topic(DEVICE, Kind.EVENT), f"not json {secret}".encode()),
        (contract.topic(DEVICE, Kind.STATUS), wrong_types.encode()),
        (contract.topic(DEVICE, Kind.EVENT), b"{" + b" " * 1_000_000 + b"}"),
        ("guichet/v1/x/unknown", b"{}"),
        (f"guichet/v2/{DEVICE}/event", contract.encode(event())),
    ]
    good = event()
    caplog.set_level(logging.WARNING, logger="fleet_server.mqtt")
    with running(settings, sessions, metrics), publisher(broker) as pub:
        for topic, payload in bad:
            pub.publish(topic, payload, qos=1)
        send(pub, DEVICE, Kind.EVENT, good)
        wait_for(
            lambda: (
                sample(metrics, "guichet_messages_rejected_total", reason="unknown-version") == 1
            )
        )
        wait_for(lambda: count(sessions, EventRecord) == 1)
    rejected = {
        reason: sample(metrics, "guichet_messages_rejected_total", reason=reason)
        for reason in (
            "not-json",
            "invalid-payload",
            "too-large",
            "unknown-topic",
            "unknown-version",
        )
    }
    assert rejected == dict.fromkeys(rejected, 1.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert {getattr(r, "reason", None) for r in warnings} >= set(rejected)
    assert all(secret not in r.getMessage() for r in caplog.records)

    # Acknowledged: a new ingest with the same session gets none of them again.
    again = Metrics()
    with running(settings, sessions, again), publisher(broker) as pub:
        send(pub, DEVICE, Kind.EVENT, event())
        wait_for(lambda: count(sessions, EventRecord) == 2)
    assert sample(again, "guichet_messages_rejected_total", reason="not-json") == 0


def test_a_redelivered_event_is_stored_once(
    broker: Broker, db_url: str, sessions: sessionmaker[Session]
) -> None:
    settings = make_settings(mqtt_url=broker.url, database_url=db_url)
    metrics = Metrics()
    once = event()
    with running(settings, sessions, metrics), publisher(broker) as pub:
        send(pub, DEVICE, Kind.EVENT, once)
        send(pub, DEVICE, Kind.EVENT, once)
        wait_for(lambda: sample(metrics, "guichet_messages_duplicate_total") == 1)
    assert count(sessions, EventRecord) == 1


def test_unacknowledged_messages_wait_for_the_next_start(
    broker: Broker, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Published while the ingest is stopped: the broker keeps them for its session."""
    settings = make_settings(mqtt_url=broker.url, database_url=db_url, mqtt_protocol="3.1.1")
    with running(settings, sessions, Metrics()):
        pass
    with publisher(broker) as pub:
        infos = [send(pub, DEVICE, Kind.EVENT, event()) for _ in range(50)]
        for info in infos:
            info.wait_for_publish(WAIT_TIMEOUT_S)
    with running(settings, sessions, Metrics()):
        wait_for(lambda: count(sessions, EventRecord) == 50)


def test_stop_is_quick(broker: Broker, db_url: str, sessions: sessionmaker[Session]) -> None:
    ingest = Ingest(make_settings(mqtt_url=broker.url, database_url=db_url), sessions, Metrics())
    ingest.start()
    assert ingest.wait_connected(WAIT_TIMEOUT_S)
    started = time.monotonic()
    ingest.stop()
    assert time.monotonic() - started < STOP_BUDGET_S


def test_start_before_the_broker_then_connects(
    broker: Broker, db_url: str, sessions: sessionmaker[Session]
) -> None:
    broker.stop()
    ingest = Ingest(make_settings(mqtt_url=broker.url, database_url=db_url), sessions, Metrics())
    ingest.start()  # does not block nor fail
    try:
        assert not ingest.wait_connected(0.2)
        broker.start()
        assert ingest.wait_connected(WAIT_TIMEOUT_S)
    finally:
        ingest.stop()


def test_broker_address() -> None:
    assert broker_address("mqtt://10.0.0.1:1884") == ("10.0.0.1", 1884, False)
    assert broker_address("mqtts://broker.example") == ("broker.example", 8883, True)
    with pytest.raises(ValueError, match="scheme"):
        broker_address("http://x")


# --- crash safety -----------------------------------------------------------------------


def start_child(settings: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet_server.mqtt.ingest"], cwd=REPO, env=env, stderr=out
        )


@pytest.mark.slow
def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    broker: Broker, db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    env = {
        "GUICHET_DATABASE_URL": db_url,
        "GUICHET_MQTT_URL": broker.url,
        "GUICHET_DEMO": "true",
        "GUICHET_MQTT_CLIENT_ID": f"fleet-{uuid.uuid4().hex[:8]}",
    }
    log = tmp_path / "ingest.log"
    ids = [uuid.uuid4() for _ in range(CRASH_EVENTS)]
    child = start_child(env, log)
    try:
        with publisher(broker) as pub:
            send(pub, DEVICE, Kind.STATUS, status(), retain=True)  # reaches it once subscribed
            wait_for(lambda: count(sessions, Device) == 1)
            half = CRASH_EVENTS // 2
            for event_id in ids[:half]:
                send(pub, DEVICE, Kind.EVENT, event(event_id))
            wait_for(lambda: count(sessions, EventRecord) >= CRASH_AFTER_STORED)
            child.send_signal(signal.SIGKILL)
            child.wait(WAIT_TIMEOUT_S)
            stored_at_kill = count(sessions, EventRecord)
            infos = [send(pub, DEVICE, Kind.EVENT, event(e)) for e in ids[half:]]
            for info in infos:
                info.wait_for_publish(WAIT_TIMEOUT_S)
        assert stored_at_kill < CRASH_EVENTS  # killed mid-stream
        child = start_child(env, log)
        wait_for(lambda: count(sessions, EventRecord) >= CRASH_EVENTS, timeout=60)
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(WAIT_TIMEOUT_S) == 0, log.read_text()[-2000:]
    with sessions() as session:
        stored = session.scalars(select(EventRecord.id)).all()
    assert len(stored) == CRASH_EVENTS
    assert set(stored) == set(ids)
