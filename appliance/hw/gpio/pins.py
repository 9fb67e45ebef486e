"""gpiozero's pin factory, and the one raw pin read the counter makes before its adapters
exist: is the call button held down at boot (the technician's self-test)?"""

from __future__ import annotations

from appliance.config import HardwareSection
from appliance.errors import HardwareError


def make_pin_factory(hw: HardwareSection) -> object | None:
    """``None`` lets gpiozero pick the Pi's factory; "mock" gives its MockFactory."""
    uses_gpio = hw.button == "gpiozero" or hw.light == "gpiozero"
    if hw.gpio_pin_factory != "mock" or not uses_gpio:
        return None
    try:
        from gpiozero.pins.mock import MockFactory, MockPWMPin
    except ImportError as exc:
        raise HardwareError("gpiozero is not installed (hardware.gpio_pin_factory)") from exc
    # A PWM-capable mock pin lets the light pulse as it does on a Pi.
    factory: object = MockFactory(pin_class=MockPWMPin) if hw.light == "gpiozero" else MockFactory()
    return factory


def button_held(pin: int, hold_s: float, *, pin_factory: object | None) -> bool:
    """Blocking: True when the button on ``pin`` is down now and stays down ``hold_s``.

    The pin is released before returning, so the counter's own adapters can take it.
    """
    from gpiozero import Button

    button = Button(pin, pin_factory=pin_factory)
    try:
        if not button.is_pressed:
            return False
        released = bool(button.wait_for_release(timeout=hold_s))
        return not released
    finally:
        button.close()
