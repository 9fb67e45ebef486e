"""Telemetry assembly: throttling flags, failure isolation, and the wire round trip."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance import telemetry
from appliance.hw.camera.presence import V4l2Camera
from appliance.hw.cups.printer import CupsPrinter
from appliance.hw.gpio.devices import GpiozeroButton
from appliance.hw.ports import SystemSnapshot
from appliance.hw.ports.camera import SimulatedCamera
from appliance.hw.ports.controls import SimulatedButton
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from appliance.hw.ports.system import SimulatedSystemProbe
from appliance.hw.sane.scanner import SaneScanner
from appliance.hw.system import PsutilSystemProbe
from appliance.telemetry import collect, decode_throttling
from guichet import contract
from guichet.contract import DeviceHealth, Telemetry
from tests.support.cups import (  # noqa: F401  # the session fixtures
    CupsQueues,
    cups_queues_fixture,
    cups_scheduler_fixture,
)
from tests.support.sane import sane_test_backend_fixture  # noqa: F401


def round_trip(message: Telemetry) -> Telemetry:
    decoded = contract.decode(contract.Kind.TELEMETRY, contract.encode(message))
    assert isinstance(decoded, Telemetry)
    return decoded


def test_throttling_bits() -> None:
    assert decode_throttling(None) is None
    calm = decode_throttling(0)
    assert calm is not None
    assert calm == decode_throttling(0)
    assert (calm.under_voltage, calm.throttled, calm.occurred_since_boot) == (False, False, False)
    flags = decode_throttling(0x50005)  # under-voltage and throttled now and since boot
    assert flags is not None
    assert (flags.raw, flags.under_voltage, flags.frequency_capped) == (0x50005, True, False)
    assert (flags.throttled, flags.soft_temperature_limit, flags.occurred_since_boot) == (
        True,
        False,
        True,
    )
    past = decode_throttling(0x80000)  # soft temperature limit earlier, not now
    assert past is not None
    assert (past.soft_temperature_limit, past.occurred_since_boot) == (False, True)
    assert decode_throttling(0x8).soft_temperature_limit is True  # type: ignore[union-attr]


async def test_simulated_counter_telemetry_round_trips() -> None:
    printer = SimulatedPrinter()
    printer.set_reasons(["toner-low"])
    message = await collect(
        SimulatedSystemProbe(seed=3, throttled_raw=0x50005),
        SimulatedCamera(),
        printer,
        SimulatedScanner(),
        SimulatedButton(loop=asyncio.get_running_loop()),
    )
    assert message.throttling is not None
    assert message.throttling.under_voltage is True
    assert message.peripherals.printer.health is DeviceHealth.WARNING
    assert round_trip(message) == message


async def test_real_adapters_telemetry_round_trips(
    tmp_path: Path, cups_queues: CupsQueues, sane_test_backend: str
) -> None:
    button = GpiozeroButton(17, loop=asyncio.get_running_loop(), pin_factory=MockFactory())
    try:
        message = await collect(
            PsutilSystemProbe(tmp_path),
            V4l2Camera(str(tmp_path / "video0")),
            CupsPrinter(cups_queues.pdf, server=cups_queues.server),
            SaneScanner(sane_test_backend),
            button,
        )
    finally:
        button.close()
    peripherals = message.peripherals
    assert peripherals.camera.health is DeviceHealth.ABSENT
    assert peripherals.printer.health is DeviceHealth.OK
    assert (peripherals.scanner.health, peripherals.button.health) == (
        DeviceHealth.OK,
        DeviceHealth.OK,
    )
    assert message.disk_free_bytes > 0
    assert round_trip(message) == message


class Broken:
    """A peripheral whose library blows up."""

    async def state(self) -> contract.Peripheral:
        raise OSError(5, "Input/output error")

    async def snapshot(self) -> SystemSnapshot:
        raise RuntimeError("psutil exploded")


class BrokenButton(SimulatedButton):
    def state(self) -> contract.ButtonState:
        raise RuntimeError("pin gone")


async def test_a_failing_part_is_reported_not_raised() -> None:
    message = await collect(
        Broken(),
        Broken(),
        Broken(),  # type: ignore[arg-type]  # returns the base Peripheral: fine at runtime
        Broken(),  # type: ignore[arg-type]
        BrokenButton(),
    )
    peripherals = message.peripherals
    for part in (peripherals.camera, peripherals.printer, peripherals.scanner):
        assert part.health is DeviceHealth.ERROR
        assert part.detail == "OSError: [Errno 5] Input/output error"
    assert (peripherals.button.health, peripherals.button.detail) == (
        DeviceHealth.ERROR,
        "RuntimeError: pin gone",
    )
    assert (message.uptime_s, message.disk_free_bytes, message.throttling) == (0.0, 0, None)
    assert round_trip(message) == message


class Hanging:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def state(self) -> contract.Peripheral:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_hanging_part_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "READ_TIMEOUT_S", 0.05)
    message = await collect(
        SimulatedSystemProbe(), Hanging(), SimulatedPrinter(), SimulatedScanner(), SimulatedButton()
    )
    assert (message.peripherals.camera.health, message.peripherals.camera.detail) == (
        DeviceHealth.ERROR,
        "pas de réponse à temps",
    )


async def test_cancellation_is_not_swallowed() -> None:
    camera = Hanging()
    task = asyncio.create_task(
        collect(
            SimulatedSystemProbe(),
            camera,
            SimulatedPrinter(),
            SimulatedScanner(),
            SimulatedButton(),
        )
    )
    await asyncio.wait_for(camera.started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class CrowdedHost(SimulatedSystemProbe):
    """A Docker host: dozens of interfaces, each with many addresses."""

    async def snapshot(self) -> SystemSnapshot:
        many = [(f"veth{i}", True, [f"fe80::{i}"] * 20) for i in range(40)]
        return dataclasses.replace(await super().snapshot(), interfaces=many)


async def test_network_is_bounded_to_the_contract() -> None:
    message = await collect(
        CrowdedHost(), SimulatedCamera(), SimulatedPrinter(), SimulatedScanner(), SimulatedButton()
    )
    assert len(message.network) == telemetry.MAX_INTERFACES
    assert all(len(i.addresses) == telemetry.MAX_ADDRESSES for i in message.network)
    assert round_trip(message) == message
