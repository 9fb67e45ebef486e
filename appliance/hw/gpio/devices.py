"""The call button and its light over gpiozero.

gpiozero calls ``when_pressed``/``when_released`` in its pin thread (or, with the mock pin
factory, in whichever thread drove the pin); this adapter timestamps the edge there and
re-posts the callback to the asyncio loop. Light patterns use gpiozero's own background
threads (``blink``, ``pulse``, ``source``), so ``show()`` returns at once.

Wiring assumed: the button between its GPIO and ground (internal pull-up, pressed = low);
the light's LED (or its driver transistor) on its GPIO, active high.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from appliance.errors import HardwareError
from appliance.hw._bridge import post_to_loop, short_error
from appliance.hw.ports import LightPattern
from guichet.contract import ButtonState, DeviceHealth

logger = logging.getLogger(__name__)

DEFAULT_BOUNCE_S = 0.05  # arcade buttons bounce for ~5-20 ms; 50 ms hides it, not a tap
WAITING_BLINK_S = 0.5  # on and off times of the slow "we are calling" blink (1 Hz)
IN_CALL_FADE_S = 0.75  # fade in/out of the "connected" pulse: calm, clearly not a blink
IN_CALL_BLINK_S = 0.15  # without PWM, a fast blink stands in for the pulse
FAULT_STEP_S = 0.1  # the double blink: on, off, on, then off for the rest of the second
FAULT_SEQUENCE = (1, 0, 1, 0, 0, 0, 0, 0, 0, 0)


def _gpio_error(what: str, exc: Exception) -> HardwareError:
    return HardwareError(f"{what}: {short_error(exc)}")


class GpiozeroButton:
    """The big call button on a GPIO pin (BCM numbering)."""

    def __init__(
        self,
        pin: int,
        *,
        loop: asyncio.AbstractEventLoop,
        pin_factory: object | None = None,
        bounce_s: float | None = DEFAULT_BOUNCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from gpiozero import Button as _Button  # only where GPIO is wired
        except ImportError as exc:
            raise HardwareError("gpiozero is not installed") from exc
        self._pin = pin
        self._loop = loop
        self._clock = clock
        self._pressed_at: float | None = None
        self._on_press: Callable[[], None] | None = None
        self._on_release: Callable[[float], None] | None = None
        try:
            self._device = _Button(pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory)
        except Exception as exc:  # BadPinFactory, GPIOPinInUse, lgpio errors…
            raise _gpio_error(f"button on GPIO{pin}", exc) from exc
        self._device.when_pressed = self._pressed_in_thread
        self._device.when_released = self._released_in_thread
        self._closed = False

    def when_pressed(self, callback: Callable[[], None]) -> None:
        """Set (replace) the press callback; it runs on the loop."""
        self._on_press = callback

    def when_released(self, callback: Callable[[float], None]) -> None:
        """Set (replace) the release callback, given how long the button was held."""
        self._on_release = callback

    def state(self) -> ButtonState:
        if self._closed:
            return ButtonState(health=DeviceHealth.ABSENT, detail="arrêté", model=self._model)
        return ButtonState(
            health=DeviceHealth.OK, model=self._model, pressed=bool(self._device.is_pressed)
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._device.close()

    @property
    def _model(self) -> str:
        return f"GPIO{self._pin}"

    # Library thread side: timestamp now, deliver on the loop.
    def _pressed_in_thread(self) -> None:
        self._pressed_at = self._clock()
        post_to_loop(self._loop, self._deliver_press)

    def _released_in_thread(self) -> None:
        held_s = 0.0 if self._pressed_at is None else max(0.0, self._clock() - self._pressed_at)
        self._pressed_at = None
        post_to_loop(self._loop, self._deliver_release, held_s)

    # Loop side.
    def _deliver_press(self) -> None:
        if self._on_press is not None:
            self._on_press()

    def _deliver_release(self, held_s: float) -> None:
        if self._on_release is not None:
            self._on_release(held_s)


class GpiozeroLight:
    """The button's light: a PWMLED where the pin factory has PWM, else a plain LED."""

    def __init__(self, pin: int, *, pin_factory: object | None = None) -> None:
        try:
            from gpiozero import LED, PWMLED
            from gpiozero.exc import PinPWMUnsupported
        except ImportError as exc:
            raise HardwareError("gpiozero is not installed") from exc
        self._pin = pin
        self._pattern = LightPattern.OFF
        try:
            try:
                self._device = PWMLED(pin, pin_factory=pin_factory)
                self.has_pwm = True
            except PinPWMUnsupported:
                self._device = LED(pin, pin_factory=pin_factory)
                self.has_pwm = False
        except Exception as exc:
            raise _gpio_error(f"light on GPIO{pin}", exc) from exc
        self._device.off()

    @property
    def pattern(self) -> LightPattern:
        return self._pattern

    def show(self, pattern: LightPattern) -> None:
        """Switch to ``pattern``; gpiozero's threads animate it from now on."""
        if pattern == self._pattern:
            return
        try:
            self._apply(pattern)
        except Exception as exc:
            raise _gpio_error(f"light on GPIO{self._pin}", exc) from exc
        self._pattern = pattern
        logger.debug("light shows %s", pattern.value)

    def _apply(self, pattern: LightPattern) -> None:
        device = self._device
        device.source = None  # stops a running FAULT sequence
        if pattern is LightPattern.OFF:
            device.off()
        elif pattern is LightPattern.IDLE:
            device.on()
        elif pattern is LightPattern.WAITING:
            device.blink(on_time=WAITING_BLINK_S, off_time=WAITING_BLINK_S)
        elif pattern is LightPattern.IN_CALL and self.has_pwm:
            device.pulse(fade_in_time=IN_CALL_FADE_S, fade_out_time=IN_CALL_FADE_S)
        elif pattern is LightPattern.IN_CALL:
            device.blink(on_time=IN_CALL_BLINK_S, off_time=IN_CALL_BLINK_S)
        else:  # FAULT
            device.off()
            device.source_delay = FAULT_STEP_S
            device.source = itertools.cycle(FAULT_SEQUENCE)

    def close(self) -> None:
        self._device.close()
