"""Fleet health end to end: real counters, real Mosquitto, the real ingest, both databases.

- a counter killed with SIGKILL is offline on the server within 1.5 × its keepalive; one
  frozen on a half-open link (SIGSTOP: the socket stays open) is offline too, within the
  broker's keepalive sweep;
- a clean stop is offline on the server within 2 s;
- the broker down for 30 s while a counter emits 200 events: all 200 stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.app import Appliance
from appliance.config import parse_config
from fleet_server.db import make_engine, make_session_factory
from fleet_server.metrics import Metrics
from fleet_server.models import Device, EventRecord
from fleet_server.mqtt.ingest import Ingest
from fleet_server.settings import Settings
from guichet import contract
from tests.support.databases import migrate_fresh
from tests.support.mosquitto import Broker

KEEPALIVE_S = 5
OUTAGE_S = 30.0  # the figure: the broker is away this long
OUTAGE_EVENTS = 200
POLL_S = 0.05
# A frozen counter (socket open, silent): MQTT says 1.5 × keepalive; Mosquitto 2.0.11 was
# measured here at 10.8-11.1 s for a 5 s keepalive, its keepalive sweep being coarse.
HALF_OPEN_LIMIT_S = 2.5 * KEEPALIVE_S


def counter_toml(device_id: str, data_dir: Path, url: str, protocol: str = "5") -> str:
    return f"""
[device]
id = "{device_id}"
site = "Monts de Châlus"
data_dir = "{data_dir}"

[fleet]
mqtt_url = "{url}"
protocol = "{protocol}"
keepalive_s = {KEEPALIVE_S}
telemetry_interval_s = 60
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[hardware]
system = "simulated"
"""


@contextmanager
def running_ingest(db_url: str, broker: Broker) -> Iterator[sessionmaker[Session]]:
    migrate_fresh(db_url)
    settings = Settings(
        demo=True, database_url=db_url, mqtt_url=broker.url, mqtt_client_id="e2e-fleet"
    )
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    ingest = Ingest(settings, sessions, Metrics())
    ingest.start()
    try:
        assert ingest.wait_connected(10), "the ingest did not connect to the broker"
        yield sessions
    finally:
        ingest.stop()
        engine.dispose()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``check`` until true; return the seconds it took, fail after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(POLL_S)
    pytest.fail(f"{what}: not within {timeout_s} s")


def device_state(sessions: sessionmaker[Session], device_id: str) -> str | None:
    with sessions() as session:
        device = session.get(Device, device_id)
        return device.state if device else None


def start_counter(tmp_path: Path, device_id: str, broker: Broker) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{device_id}.toml"
    config.write_text(counter_toml(device_id, tmp_path / device_id, broker.url))
    command = [sys.executable, "-m", "guichet_cli", "appliance", "run", "--config", str(config)]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def test_dead_counters_are_shown_offline_in_time(
    db_url: str, broker: Broker, tmp_path: Path
) -> None:
    with running_ingest(db_url, broker) as sessions:
        killed = start_counter(tmp_path, "killed-01", broker)
        frozen = start_counter(tmp_path, "frozen-01", broker)
        stopped = start_counter(tmp_path, "stopped-01", broker)
        processes = [killed, frozen, stopped]
        try:
            for device_id in ("killed-01", "frozen-01", "stopped-01"):
                wait_until(
                    lambda d=device_id: device_state(sessions, d) == "online",
                    20,
                    f"{device_id} online",
                )
            killed.send_signal(signal.SIGKILL)
            wait_until(
                lambda: device_state(sessions, "killed-01") == "offline",
                1.5 * KEEPALIVE_S,
                "killed counter offline",
            )
            frozen.send_signal(signal.SIGSTOP)  # socket open, no more pings: a half-open link
            wait_until(
                lambda: device_state(sessions, "frozen-01") == "offline",
                HALF_OPEN_LIMIT_S,
                "frozen counter offline",
            )
            stopped.send_signal(signal.SIGTERM)
            wait_until(
                lambda: device_state(sessions, "stopped-01") == "offline",
                2.0,
                "cleanly stopped counter offline",
            )
            assert stopped.wait(timeout=5) == 0
        finally:
            for process in processes:
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()


def outage_events(sessions: sessionmaker[Session], device_id: str) -> tuple[int, int]:
    """(rows, distinct sequence numbers) of the outage events stored for the counter."""
    with sessions() as session:
        rows = session.scalars(
            select(EventRecord).where(
                EventRecord.device_id == device_id, EventRecord.kind == contract.EventKind.ERROR
            )
        ).all()
        total = session.scalar(select(func.count()).select_from(EventRecord))
    seqs = {row.data.get("seq") for row in rows}
    assert total is not None
    return len(rows), len(seqs)


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps sessions across its restart, as a production broker is set up."""
    store = tmp_path / "mosquitto-store"
    store.mkdir()
    b = Broker(
        workdir=tmp_path / "mosquitto",
        extra_config=f"persistence true\npersistence_location {store}/\n",
    )
    b.start()
    yield b
    b.stop()


async def test_broker_outage_loses_and_duplicates_nothing(
    db_url: str, persistent_broker: Broker, tmp_path: Path
) -> None:
    broker = persistent_broker
    config = parse_config(counter_toml("outage-01", tmp_path / "outage", broker.url))
    with running_ingest(db_url, broker) as sessions:
        appliance = Appliance(config)
        running = asyncio.create_task(appliance.run())
        try:
            await asyncio.wait_for(appliance.wait_ready(), 20)
            await asyncio.wait_for(appliance.link.wait_connected(), 20)
            broker.stop()
            await asyncio.wait_for(appliance.link.wait_disconnected(), 10)
            pause = OUTAGE_S / OUTAGE_EVENTS
            for seq in range(OUTAGE_EVENTS):
                appliance.emit(contract.EventKind.ERROR, {"seq": seq, "what": "outage test"})
                await asyncio.sleep(pause)  # spread over the outage, as a counter would
            broker.start()
            await asyncio.to_thread(
                wait_until,
                lambda: outage_events(sessions, "outage-01")[0] >= OUTAGE_EVENTS,
                60,
                "all outage events stored",
            )
            await appliance.stop()
            await running
            assert outage_events(sessions, "outage-01") == (OUTAGE_EVENTS, OUTAGE_EVENTS)
        finally:
            if not running.done():
                await appliance.stop()
                await running
