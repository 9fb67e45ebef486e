"""The call button and its light: real gpiozero on its mock pin factory, and the fakes.

The same contract runs against ``SimulatedButton`` and ``GpiozeroButton``: a press made in
another thread reaches the callback on the loop's thread; the release reports how long the
button was held.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.errors import HardwareError
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from appliance.hw.ports import Button, LightPattern, StatusLight
from appliance.hw.ports.controls import SimulatedButton, SimulatedLight
from guichet.contract import DeviceHealth

BUTTON_PIN = 17
LIGHT_PIN = 27
EVENT_TIMEOUT_S = 2.0
PATTERN_TIMEOUT_S = 3.0  # the slow blink toggles every 0.5 s


class FakeClock:
    """A monotonic clock the test advances: long presses without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ButtonRig:
    button: Button
    press: Callable[[], None]  # callable from any thread, like a finger
    release: Callable[[], None]
    clock: FakeClock


@pytest.fixture(params=["simulated", "gpiozero"])
async def button_rig(request: pytest.FixtureRequest) -> AsyncIterator[ButtonRig]:
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    if request.param == "gpiozero":
        factory = MockFactory()
        button: Button = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory, clock=clock)
        pin = factory.pin(BUTTON_PIN)
        rig = ButtonRig(button, pin.drive_low, pin.drive_high, clock)
    else:
        simulated = SimulatedButton(loop=loop, clock=clock)
        rig = ButtonRig(simulated, simulated.press, simulated.release, clock)
    yield rig
    rig.button.close()


async def eventually(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Wait until ``predicate()`` holds (for output pins, which have no callbacks)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_press_from_another_thread_arrives_on_the_loop(button_rig: ButtonRig) -> None:
    loop_thread = threading.get_ident()
    pressed = asyncio.Event()
    seen_in: list[int] = []

    def on_press() -> None:
        seen_in.append(threading.get_ident())
        pressed.set()

    button_rig.button.when_pressed(on_press)
    await asyncio.to_thread(button_rig.press)
    await asyncio.wait_for(pressed.wait(), EVENT_TIMEOUT_S)
    assert seen_in == [loop_thread]
    assert button_rig.button.state().pressed is True


async def test_release_reports_how_long_it_was_held(button_rig: ButtonRig) -> None:
    released: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    button_rig.button.when_released(released.set_result)
    button_rig.press()
    button_rig.clock.now += 3.5  # a long press
    await asyncio.to_thread(button_rig.release)
    held_s = await asyncio.wait_for(released, EVENT_TIMEOUT_S)
    assert held_s == pytest.approx(3.5)
    state = button_rig.button.state()
    assert state.health is DeviceHealth.OK
    assert state.pressed is False


async def test_button_satisfies_the_port(button_rig: ButtonRig) -> None:
    assert isinstance(button_rig.button, Button)


async def test_a_pin_in_use_is_a_hardware_error() -> None:
    factory = MockFactory()
    loop = asyncio.get_running_loop()
    first = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory)
    try:
        with pytest.raises(HardwareError, match="GPIO17"):
            GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory)
    finally:
        first.close()


async def test_closed_button_reports_absent_and_frees_its_pin() -> None:
    factory = MockFactory()
    loop = asyncio.get_running_loop()
    button = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory)
    button.close()
    button.close()
    assert button.state().health is DeviceHealth.ABSENT
    GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory).close()


# --- the light ---------------------------------------------------------------------------


@pytest.fixture(params=["simulated", "gpiozero"])
def light(request: pytest.FixtureRequest) -> StatusLight:
    if request.param == "gpiozero":
        return GpiozeroLight(LIGHT_PIN, pin_factory=MockFactory(pin_class=MockPWMPin))
    return SimulatedLight()


def test_light_follows_the_pattern_shown(light: StatusLight) -> None:
    assert isinstance(light, StatusLight)
    assert light.pattern is LightPattern.OFF
    for pattern in LightPattern:
        light.show(pattern)
        assert light.pattern is pattern
    light.close()


def _light_pin(pwm: bool) -> tuple[GpiozeroLight, MockPWMPin]:
    factory = MockFactory(pin_class=MockPWMPin) if pwm else MockFactory()
    return GpiozeroLight(LIGHT_PIN, pin_factory=factory), factory.pin(LIGHT_PIN)


async def test_steady_patterns_set_the_pin() -> None:
    light, pin = _light_pin(pwm=False)
    assert light.has_pwm is False
    light.show(LightPattern.IDLE)
    assert pin.state == 1
    light.show(LightPattern.OFF)
    assert pin.state == 0
    light.close()


@pytest.mark.parametrize("pattern", [LightPattern.WAITING, LightPattern.FAULT])
async def test_blinking_patterns_toggle_the_pin(pattern: LightPattern) -> None:
    light, pin = _light_pin(pwm=False)
    pin.clear_states()
    light.show(pattern)
    await eventually(lambda: len(pin.states) >= 4, PATTERN_TIMEOUT_S)  # on, off, on…
    assert {s.state for s in pin.states} == {0, 1}
    light.show(LightPattern.IDLE)  # stops the animation thread
    assert pin.state == 1
    light.close()


async def test_in_call_pulses_with_pwm_and_blinks_without() -> None:
    light, pin = _light_pin(pwm=True)
    assert light.has_pwm is True
    light.show(LightPattern.IN_CALL)
    await eventually(lambda: any(0 < s.state < 1 for s in pin.states), PATTERN_TIMEOUT_S)
    light.close()

    light, pin = _light_pin(pwm=False)
    pin.clear_states()
    light.show(LightPattern.IN_CALL)
    await eventually(lambda: len(pin.states) >= 4, PATTERN_TIMEOUT_S)
    assert {s.state for s in pin.states} == {0, 1}
    light.close()


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="real GPIO here")
async def test_no_gpio_on_this_machine_is_a_hardware_error() -> None:
    with pytest.raises(HardwareError, match="GPIO17"):
        GpiozeroButton(BUTTON_PIN, loop=asyncio.get_running_loop())
