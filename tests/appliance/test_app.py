"""The whole counter agent (simulated hardware) against a real Mosquitto: in-process and as
the ``guichet appliance run`` process that systemd would start."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from appliance.app import Appliance
from appliance.config import ApplianceConfig, parse_config
from appliance.fleet.outbox import Outbox
from appliance.hw.ports import LightPattern, UsbDevice
from appliance.hw.ports.hotplug import SimulatedHotPlug
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.wiring import Hardware, build_hardware
from guichet import contract
from tests.appliance.mqtt_observer import Observer, Seen
from tests.support.mosquitto import Broker

DEVICE = "guichet-test"
STATUS = contract.topic(DEVICE, contract.Kind.STATUS)
EVENTS = contract.topic(DEVICE, contract.Kind.EVENT)
TELEMETRY = contract.topic(DEVICE, contract.Kind.TELEMETRY)
PRINTER = UsbDevice(
    path="/sys/devices/usb1/1-1", vendor_id="03f0", product_id="002a", product="LaserJet",
    kind="printer",
)  # fmt: skip


def config_text(data_dir: Path, url: str, protocol: str = "5", interval_s: int = 30) -> str:
    return f"""
[device]
id = "{DEVICE}"
site = "Essai"
data_dir = "{data_dir}"

[fleet]
mqtt_url = "{url}"
protocol = "{protocol}"
keepalive_s = 5
telemetry_interval_s = {interval_s}
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[hardware]
system = "simulated"
"""


def make_config(tmp_path: Path, url: str, **kwargs: object) -> ApplianceConfig:
    return parse_config(config_text(tmp_path / "data", url, **kwargs))  # type: ignore[arg-type]


class WatchedLight:
    """A status light whose changes a test can wait for."""

    def __init__(self) -> None:
        self._pattern = LightPattern.OFF
        self._shown: dict[LightPattern, asyncio.Event] = {p: asyncio.Event() for p in LightPattern}

    @property
    def pattern(self) -> LightPattern:
        return self._pattern

    def show(self, pattern: LightPattern) -> None:
        self._pattern = pattern
        self._shown[pattern].set()

    async def wait_for(self, pattern: LightPattern) -> None:
        await asyncio.wait_for(self._shown[pattern].wait(), 10)

    def close(self) -> None:
        self._pattern = LightPattern.OFF


def with_watched_light(config: ApplianceConfig, loop: asyncio.AbstractEventLoop) -> Hardware:
    hardware = build_hardware(config, loop)
    hardware.light = WatchedLight()
    return hardware


@asynccontextmanager
async def running(appliance: Appliance) -> AsyncIterator[Appliance]:
    task = asyncio.create_task(appliance.run())
    await asyncio.wait_for(appliance.wait_ready(), 10)
    try:
        yield appliance
    finally:
        await asyncio.wait_for(appliance.stop(), 5)
        await asyncio.wait_for(task, 5)  # re-raises if run() died
    # A part that crashed and was restarted would only be logged: fail the test instead.
    assert all(h.restarts == 0 for h in appliance.supervisor.health.values())


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker.port, [f"guichet/v1/{DEVICE}/#"]).start()
    yield obs
    obs.stop()


def as_event(seen: Seen) -> contract.Event:
    event = contract.decode(contract.Kind.EVENT, seen.payload)
    assert isinstance(event, contract.Event)
    return event


async def next_event(observer: Observer) -> contract.Event:
    return as_event(await observer.next_on(EVENTS))


async def test_counter_starts_reports_and_stops(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    appliance = Appliance(make_config(tmp_path, broker.url), build=with_watched_light)
    async with running(appliance):
        started = await next_event(observer)
        assert started.kind is contract.EventKind.COUNTER_STARTED
        telemetry = contract.decode(
            contract.Kind.TELEMETRY, (await observer.next_on(TELEMETRY)).payload
        )
        assert isinstance(telemetry, contract.Telemetry)
        light = appliance.hardware.light
        assert isinstance(light, WatchedLight)
        await light.wait_for(LightPattern.IDLE)
    offline = contract.decode(contract.Kind.STATUS, (await observer.next_on(STATUS)).payload)
    while isinstance(offline, contract.Status) and offline.state == "online":
        offline = contract.decode(contract.Kind.STATUS, (await observer.next_on(STATUS)).payload)
    assert isinstance(offline, contract.Status)
    assert offline.reason == "shutdown"


async def test_hot_plug_changes_become_events(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        assert (await next_event(observer)).kind is contract.EventKind.COUNTER_STARTED
        hotplug = appliance.hardware.hotplug
        assert isinstance(hotplug, SimulatedHotPlug)
        hotplug.plug(PRINTER)
        plugged = await next_event(observer)
        hotplug.unplug(PRINTER.path)
        unplugged = await next_event(observer)
    assert plugged.kind is contract.EventKind.PERIPHERAL_PLUGGED
    assert plugged.data["kind"] == "printer"
    assert plugged.data["vendor_id"] == "03f0"
    assert unplugged.kind is contract.EventKind.PERIPHERAL_UNPLUGGED


async def test_peripheral_error_is_one_event_per_transition(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    config = make_config(tmp_path, broker.url, interval_s=1)
    async with running(Appliance(config)) as appliance:
        printer = appliance.hardware.printer
        assert isinstance(printer, SimulatedPrinter)
        printer.stop("bourrage papier")
        errors: list[contract.Event] = []
        ticks_after_error = 0
        while ticks_after_error < 3:  # three more telemetry ticks, still one event
            seen = await observer.next()
            if seen.topic == EVENTS and as_event(seen).kind is contract.EventKind.ERROR:
                errors.append(as_event(seen))
            elif seen.topic == TELEMETRY and errors:
                ticks_after_error += 1
    assert len(errors) == 1
    assert errors[0].data["component"] == "printer"
    assert errors[0].data["detail"] == "bourrage papier"


async def test_light_shows_fault_when_the_fleet_stays_unreachable(
    broker: Broker, tmp_path: Path
) -> None:
    broker.stop()
    appliance = Appliance(
        make_config(tmp_path, broker.url), fault_after_s=0.3, build=with_watched_light
    )
    async with running(appliance):
        light = appliance.hardware.light
        assert isinstance(light, WatchedLight)
        await light.wait_for(LightPattern.FAULT)
        broker.start()
        await light.wait_for(LightPattern.IDLE)


async def test_events_of_a_stopped_counter_are_kept_for_the_next_start(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    broker.stop()
    config = make_config(tmp_path, broker.url)
    async with running(Appliance(config)):
        pass
    broker.start()
    observer.wait_subscribed()
    async with running(Appliance(config)):
        first, second = await next_event(observer), await next_event(observer)
    assert first.kind is second.kind is contract.EventKind.COUNTER_STARTED
    assert first.id != second.id
    assert first.at <= second.at


# --- the process systemd runs ----------------------------------------------------------------


def start_counter(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "guichet_cli", "appliance", "run", "--config", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@pytest.fixture
def counter_files(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "counter.toml", tmp_path / "counter.log"


async def wait_status(observer: Observer, state: str) -> contract.Status:
    while True:
        status = contract.decode(contract.Kind.STATUS, (await observer.next_on(STATUS)).payload)
        assert isinstance(status, contract.Status)
        if status.state == state:
            return status


async def wait_exit(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    return await asyncio.to_thread(process.wait, timeout)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_killed_counter_is_declared_offline_by_its_last_will(
    broker: Broker, tmp_path: Path, observer: Observer, protocol: str,
    counter_files: tuple[Path, Path],
) -> None:  # fmt: skip
    config_file, log = counter_files
    config_file.write_text(config_text(tmp_path / "data", broker.url, protocol))
    process = start_counter(config_file, log)
    try:
        await wait_status(observer, "online")
        process.kill()
        status = await wait_status(observer, "offline")
    finally:
        process.kill()
        await wait_exit(process)
    assert status.reason == "last-will"


async def test_sigterm_stops_the_counter_cleanly_within_two_seconds(
    broker: Broker, tmp_path: Path, observer: Observer, counter_files: tuple[Path, Path]
) -> None:
    config_file, log = counter_files
    config_file.write_text(config_text(tmp_path / "data", broker.url))
    process = start_counter(config_file, log)
    try:
        await wait_status(observer, "online")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = await wait_status(observer, "offline")
        said_offline_s = time.monotonic() - started
        code = await wait_exit(process)
    finally:
        process.kill()
        await wait_exit(process)
    assert status.reason == "shutdown"
    assert said_offline_s < 2.0
    assert code == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(line.get("device_id") == DEVICE for line in lines if line["logger"] != "asyncio")


async def test_outbox_survives_a_process_restart(
    broker: Broker, tmp_path: Path, observer: Observer, counter_files: tuple[Path, Path]
) -> None:
    config_file, log = counter_files
    data_dir = tmp_path / "data"
    config_file.write_text(config_text(data_dir, broker.url))
    broker.stop()
    first_run = subprocess.Popen(
        [sys.executable, "-m", "guichet_cli", "appliance", "run", "--config", str(config_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert first_run.stderr is not None
    while b"counter started" not in await asyncio.to_thread(first_run.stderr.readline):
        pass
    first_run.send_signal(signal.SIGTERM)
    await asyncio.to_thread(first_run.communicate, None, 10)
    assert first_run.returncode == 0
    kept = await _stored_event_ids(data_dir)
    assert len(kept) == 1

    broker.start()
    observer.wait_subscribed()
    second_run = start_counter(config_file, log)
    try:
        first, second = await next_event(observer), await next_event(observer)
    finally:
        second_run.send_signal(signal.SIGTERM)
        await wait_exit(second_run)
    assert first.id == kept[0]
    assert second.kind is contract.EventKind.COUNTER_STARTED
    assert second.id != kept[0]


async def _stored_event_ids(data_dir: Path) -> list[uuid.UUID]:
    box = await Outbox.open(data_dir / "outbox.sqlite3", 1000)
    try:
        stored = await box.peek()
    finally:
        await box.close()
    return [as_event(Seen(m.topic, m.payload, False)).id for m in stored]


def test_run_with_a_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nid = "guichet-test"\nsite = "Essai"\ncolour = "blue"\n')
    result = subprocess.run(
        [sys.executable, "-m", "guichet_cli", "appliance", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "device.colour" in result.stderr
    assert str(bad) in result.stderr
