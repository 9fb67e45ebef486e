"""The broker goes away and comes back; a counter's clock is a year off across a server
restart with a fresh session (issue 12, findings 15 and 13) — real Mosquitto, the real
fleet server (web app with its ingest and health checks), SQLite and PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.metrics import Metrics
from fleet_server.models import Alert, Device
from fleet_server.mqtt.ingest import Ingest
from guichet import contract
from guichet.contract import Kind
from tests.fleet_server.storage_support import migrated, status, telemetry, wait_for
from tests.support.mosquitto import Broker
from tests.support.webapp import WebApp, running_app

COUNTERS = [f"gorre-{i:02d}" for i in range(5)]
TELEMETRY_EVERY_S = 1.0
OUTAGE_S = 16.0  # long enough for paho's old backoff (1, 2, 4, 8, 16 s) to wait 16 s more
RECONNECT_BUDGET_S = 6.0  # from the broker's return to every counter online again
YEAR = timedelta(days=365)


class FakeCounter:
    """A counter as the broker sees it: a will, a retained "online" on every connect, and
    telemetry every second while connected (paho reconnects it by itself)."""

    def __init__(self, broker: Broker, device_id: str, skew: timedelta = timedelta(0)) -> None:
        self.device_id = device_id
        self.skew = skew
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
        will = contract.last_will("1.2.3", 1)
        self.client.will_set(
            contract.topic(device_id, Kind.STATUS), contract.encode(will), qos=1, retain=True
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self.client.connect_async("127.0.0.1", broker.port, keepalive=5)

    def start(self) -> None:
        self.client.loop_start()
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        self._ticker.join()

    def _now(self) -> contract.datetime:
        return contract.utcnow() + self.skew

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        online = status(at=self._now(), interval=1)
        client.publish(
            contract.topic(self.device_id, Kind.STATUS), contract.encode(online), 1, retain=True
        )

    def _tick(self) -> None:
        while not self._stop.wait(TELEMETRY_EVERY_S):
            if self.client.is_connected():
                tel = contract.encode(telemetry(at=self._now()))
                self.client.publish(contract.topic(self.device_id, Kind.TELEMETRY), tel, 0)


@contextmanager
def counters(broker: Broker, ids: list[str], skew: timedelta = timedelta(0)) -> Iterator[None]:
    fleet = [FakeCounter(broker, device_id, skew) for device_id in ids]
    for counter in fleet:
        counter.start()
    try:
        yield
    finally:
        for counter in fleet:
            counter.stop()


def states(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return dict(session.execute(select(Device.id, Device.state)).all())


def device_alerts(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        return [(a.device_id, a.kind) for a in session.scalars(select(Alert))]


def metric(app: WebApp, token: str, name: str) -> float | None:
    text = app.client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.mark.slow
def test_a_broker_outage_is_not_a_fleet_outage(broker: Broker, db_url: str) -> None:
    overrides = {
        "ingest_enabled": True,
        "mqtt_url": broker.url,
        "mqtt_client_id": f"fleet-{uuid.uuid4().hex[:8]}",
        "staleness_check_s": 0.5,
        "silent_after_intervals": 2,
        "alert_offline_after_min": 0.05,  # 3 s: well inside the outage
    }
    with running_app(db_url, **overrides) as app, counters(broker, COUNTERS):
        app.add_user()
        token = app.token()
        assert app.login().status_code == 303
        online = dict.fromkeys(COUNTERS, "online")
        wait_for(lambda: states(app.sessions) == online)

        broker.stop()
        time.sleep(OUTAGE_S)  # the outage itself, with the health checks running

        # One alert for the server's lost broker, none per counter, nobody turned silent.
        assert device_alerts(app.sessions) == []
        assert "silent" not in states(app.sessions).values()
        assert metric(app, token, "guichet_broker_connected") == 0
        assert metric(app, token, "guichet_open_alerts") == 1
        assert "Courtier MQTT injoignable" in app.client.get("/alerts").text
        assert "Le serveur n'a plus de liaison avec le courtier MQTT" in app.client.get("/").text

        broker.start()
        back = time.monotonic()
        wait_for(lambda: states(app.sessions) == online, timeout=RECONNECT_BUDGET_S)
        assert time.monotonic() - back < RECONNECT_BUDGET_S
        wait_for(lambda: metric(app, token, "guichet_open_alerts") == 0)
        assert metric(app, token, "guichet_broker_connected") == 1
        assert "courtier MQTT" not in app.client.get("/").text
        time.sleep(4.0)  # past the alert delay: still nothing per counter
        assert device_alerts(app.sessions) == []


KILLED_COUNTER = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from guichet import contract
device_id, port = sys.argv[1], int(sys.argv[2])
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
topic = contract.topic(device_id, contract.Kind.STATUS)
client.will_set(topic, contract.encode(contract.last_will("1.2.3", 1)), qos=1, retain=True)
client.connect("127.0.0.1", port)
client.loop_start()
client.publish(topic, sys.stdin.buffer.readline().strip(), qos=1, retain=True).wait_for_publish()
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.mark.parametrize("skew", [-YEAR, YEAR], ids=["year-behind", "year-ahead"])
def test_a_skewed_counter_is_not_left_offline_after_a_fresh_session(
    broker: Broker, db_url: str, skew: timedelta
) -> None:
    device_id = "chalus-01"
    with migrated(db_url) as sessions:

        def ingest(client_id: str) -> Ingest:
            settings = {"mqtt_url": broker.url, "database_url": db_url, "demo": True}
            from fleet_server.settings import Settings

            started = Ingest(Settings(**settings, mqtt_client_id=client_id), sessions, Metrics())
            started.start()
            assert started.wait_connected(20)
            return started

        first = ingest(f"fleet-{uuid.uuid4().hex[:8]}")
        try:  # the counter connects (clock off by a year), then dies: its will says offline
            child = subprocess.Popen(
                [sys.executable, "-c", KILLED_COUNTER, device_id, str(broker.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.write(contract.encode(status(at=contract.utcnow() + skew)) + b"\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == b"ready"
            wait_for(lambda: states(sessions).get(device_id) == "online")
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
            wait_for(lambda: states(sessions).get(device_id) == "offline")
        finally:
            first.stop()
        # While the server is down the counter comes back; the server restarts with a
        # fresh MQTT session: it only gets the retained "online" and then telemetry.
        with counters(broker, [device_id], skew):
            time.sleep(1.5)  # the counter reconnects while the server is away
            second = ingest(f"fleet-{uuid.uuid4().hex[:8]}")
            try:
                wait_for(lambda: states(sessions).get(device_id) == "online", timeout=10)
                with sessions() as session:
                    device = session.get(Device, device_id)
                    assert device is not None
                    assert device.state_since is not None
                    assert abs(device.state_since - contract.utcnow()) < timedelta(minutes=1)
            finally:
                second.stop()
