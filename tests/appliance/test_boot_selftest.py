"""Holding the call button at boot asks for the self-test (gpiozero's mock pins)."""

from __future__ import annotations

import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPin

from appliance.boot_selftest import button_held_at_boot
from appliance.config import ApplianceConfig, parse_config

PIN = 17
HOLD_S = 0.3


class HeldDownPin(MockPin):  # type: ignore[misc]
    """A pin whose button a finger holds down: setting the pull-up leaves it low."""

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        self.drive_low()


def config(tmp_path: Path, button: str = "gpiozero") -> ApplianceConfig:
    return parse_config(
        f'[device]\nid = "boot-01"\nsite = "Essai"\ndata_dir = "{tmp_path}"\n'
        f'[hardware]\nbutton = "{button}"\nbutton_pin = {PIN}\n'
    )


def test_held_through_the_wait_asks_for_the_self_test(tmp_path: Path) -> None:
    factory = MockFactory(pin_class=HeldDownPin)
    assert button_held_at_boot(config(tmp_path), HOLD_S, pin_factory=factory)


def test_not_pressed_starts_normally(tmp_path: Path) -> None:
    factory = MockFactory()
    factory.pin(PIN).drive_high()
    assert not button_held_at_boot(config(tmp_path), HOLD_S, pin_factory=factory)


def test_released_during_the_wait_starts_normally(tmp_path: Path) -> None:
    factory = MockFactory(pin_class=HeldDownPin)
    pin = factory.pin(PIN)
    releaser = threading.Timer(HOLD_S / 3, pin.drive_high)
    releaser.start()
    try:
        assert not button_held_at_boot(config(tmp_path), HOLD_S * 3, pin_factory=factory)
    finally:
        releaser.cancel()


def test_a_simulated_button_never_asks(tmp_path: Path) -> None:
    assert not button_held_at_boot(config(tmp_path, "simulated"), HOLD_S)
