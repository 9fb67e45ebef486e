"""build_hardware: the configuration picks real, simulated or absent adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import ApplianceConfig, parse_config
from appliance.hw.absent import AbsentCamera, AbsentPrinter, AbsentScanner
from appliance.hw.camera.presence import Picamera2Camera, V4l2Camera
from appliance.hw.cups.printer import CupsPrinter
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from appliance.hw.ports import LightPattern
from appliance.hw.ports.camera import SimulatedCamera
from appliance.hw.ports.controls import SimulatedButton, SimulatedLight
from appliance.hw.ports.hotplug import SimulatedHotPlug
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from appliance.hw.ports.system import SimulatedSystemProbe
from appliance.hw.sane.scanner import SaneScanner
from appliance.hw.system import PsutilSystemProbe
from appliance.hw.udev import PyudevHotPlug
from appliance.wiring import Hardware, build_hardware
from guichet.contract import DeviceHealth


def config(tmp_path: Path, hardware: str = "") -> ApplianceConfig:
    return parse_config(
        f'[device]\nid = "guichet-test"\nsite = "Test"\ndata_dir = "{tmp_path}"\n'
        f"[hardware]\n{hardware}"
    )


@pytest.fixture
def built() -> Iterator[list[Hardware]]:
    """Close whatever a test built, even when it fails."""
    made: list[Hardware] = []
    yield made
    for hardware in made:
        hardware.close()


async def test_defaults_simulate_a_whole_counter(tmp_path: Path, built: list[Hardware]) -> None:
    cfg = config(tmp_path, 'system = "simulated"\n')
    hw = build_hardware(cfg, asyncio.get_running_loop())
    built.append(hw)
    assert isinstance(hw.button, SimulatedButton)
    assert isinstance(hw.light, SimulatedLight)
    assert isinstance(hw.camera, SimulatedCamera)
    assert isinstance(hw.printer, SimulatedPrinter)
    assert isinstance(hw.scanner, SimulatedScanner)
    assert isinstance(hw.hotplug, SimulatedHotPlug)
    assert isinstance(hw.system, SimulatedSystemProbe)
    assert hw.pin_factory is None
    again = build_hardware(cfg, asyncio.get_running_loop())
    built.append(again)
    assert (await hw.system.snapshot()).interfaces == (await again.system.snapshot()).interfaces


async def test_real_adapters_with_the_mock_pin_factory(
    tmp_path: Path, built: list[Hardware]
) -> None:
    cfg = config(
        tmp_path,
        'button = "gpiozero"\nlight = "gpiozero"\ngpio_pin_factory = "mock"\n'
        'camera = "v4l2"\ncamera_device = "/dev/video7"\nprinter = "cups"\n'
        'printer_queue = "office"\nscanner = "sane"\nscanner_device = "test:0"\n'
        'usb = "pyudev"\nsystem = "real"\n',
    )
    loop = asyncio.get_running_loop()
    hw = build_hardware(cfg, loop)
    built.append(hw)
    assert isinstance(hw.button, GpiozeroButton)
    assert isinstance(hw.light, GpiozeroLight)
    assert isinstance(hw.camera, V4l2Camera)
    assert isinstance(hw.printer, CupsPrinter)
    assert hw.printer.queue == "office"
    assert isinstance(hw.scanner, SaneScanner)
    assert isinstance(hw.hotplug, PyudevHotPlug)
    assert isinstance(hw.system, PsutilSystemProbe)
    assert isinstance(hw.pin_factory, MockFactory)

    pressed = asyncio.Event()
    hw.button.when_pressed(pressed.set)
    hw.pin_factory.pin(cfg.hardware.button_pin).drive_low()
    await asyncio.wait_for(pressed.wait(), 2)
    assert hw.light.has_pwm is True  # the mock factory was built with PWM pins
    hw.light.show(LightPattern.IDLE)
    assert hw.pin_factory.pin(cfg.hardware.light_pin, pin_class=MockPWMPin).state == 1
    hw.close()
    hw.close()  # twice is fine
    assert hw.button.state().health is DeviceHealth.ABSENT


async def test_none_means_absent(tmp_path: Path, built: list[Hardware]) -> None:
    cfg = config(tmp_path, 'camera = "none"\nprinter = "none"\nscanner = "none"\n')
    hw = build_hardware(cfg, asyncio.get_running_loop())
    built.append(hw)
    assert isinstance(hw.camera, AbsentCamera)
    assert isinstance(hw.printer, AbsentPrinter)
    assert isinstance(hw.scanner, AbsentScanner)
    for state in (await hw.camera.state(), await hw.printer.state(), await hw.scanner.state()):
        assert state.health is DeviceHealth.ABSENT


async def test_picamera2_is_chosen_lazily(tmp_path: Path, built: list[Hardware]) -> None:
    hw = build_hardware(config(tmp_path, 'camera = "picamera2"\n'), asyncio.get_running_loop())
    built.append(hw)
    assert isinstance(hw.camera, Picamera2Camera)
