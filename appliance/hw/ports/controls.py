"""The call button and its light: ports and their fakes (``SimulatedButton`` pressed with
``press()``/``release()``, ``SimulatedLight`` remembering every pattern)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, runtime_checkable

from guichet.contract import ButtonState, DeviceHealth

SIMULATED_BUTTON_MODEL = "Bouton simulé"  # shown on the counter's page: French


class LightPattern(StrEnum):
    """What the call button's light says to the citizen."""

    OFF = "off"
    IDLE = "idle"  # steady on: press me
    WAITING = "waiting"  # slow blink: we are calling
    IN_CALL = "in_call"  # fast pulse: you are connected
    FAULT = "fault"  # short double blink: out of service


@runtime_checkable
class Button(Protocol):
    """The big call button. Callbacks run on the asyncio loop, never in a library thread.

    Each ``when_*`` call sets (replaces) that callback.
    """

    def when_pressed(self, callback: Callable[[], None]) -> None: ...
    def when_released(self, callback: Callable[[float], None]) -> None:
        """``callback(held_s)``: how long it was held, for long-press detection."""
        ...

    def state(self) -> ButtonState: ...
    def close(self) -> None: ...


@runtime_checkable
class StatusLight(Protocol):
    def show(self, pattern: LightPattern) -> None: ...
    @property
    def pattern(self) -> LightPattern: ...
    def close(self) -> None: ...


class SimulatedButton:
    """A button pressed by calling ``press()``/``release()``; from any thread if given ``loop``."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._clock = clock
        self._pressed_at: float | None = None
        self._on_press: Callable[[], None] | None = None
        self._on_release: Callable[[float], None] | None = None
        self.closed = False

    def when_pressed(self, callback: Callable[[], None]) -> None:
        self._on_press = callback

    def when_released(self, callback: Callable[[float], None]) -> None:
        self._on_release = callback

    def press(self) -> None:
        if self._pressed_at is not None:
            return
        self._pressed_at = self._clock()
        if self._on_press is not None:
            self._call_soon(self._on_press)

    def release(self, held_s: float | None = None) -> None:
        """Release; ``held_s`` overrides the measured time (a long press without waiting)."""
        if self._pressed_at is None:
            return
        measured = self._clock() - self._pressed_at
        self._pressed_at = None
        if self._on_release is not None:
            self._call_soon(self._on_release, measured if held_s is None else held_s)

    def state(self) -> ButtonState:
        if self.closed:
            return ButtonState(health=DeviceHealth.ABSENT, detail="arrêté")
        return ButtonState(
            health=DeviceHealth.OK,
            model=SIMULATED_BUTTON_MODEL,
            pressed=self._pressed_at is not None,
        )

    def close(self) -> None:
        self.closed = True

    def _call_soon(self, callback: Callable[..., None], *args: float) -> None:
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon_threadsafe(callback, *args)


class SimulatedLight:
    """Remembers the pattern and every change (``history``) for assertions and the demo."""

    def __init__(self) -> None:
        self._pattern = LightPattern.OFF
        self.history: list[LightPattern] = []

    @property
    def pattern(self) -> LightPattern:
        return self._pattern

    def show(self, pattern: LightPattern) -> None:
        if pattern != self._pattern:
            self._pattern = pattern
            self.history.append(pattern)

    def close(self) -> None:
        self._pattern = LightPattern.OFF
