"""The hardware ports: small interfaces the rest of the appliance talks to.

Each port has one adapter per library (``gpiozero_io.py``, ``cups_printer.py``, …) and,
where the real thing cannot run on a laptop, a simulated adapter (``simulated.py``).
Nothing here imports a hardware library. Every method that can block is ``async``; the
adapters run the blocking library call in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from guichet.contract import ButtonState, Peripheral, PrinterState, ScannerState


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


@runtime_checkable
class Printer(Protocol):
    async def state(self) -> PrinterState: ...


@runtime_checkable
class Scanner(Protocol):
    async def state(self) -> ScannerState: ...


@runtime_checkable
class Camera(Protocol):
    """Presence and health of the camera (frames come with the call issue)."""

    async def state(self) -> Peripheral: ...


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """A USB device as the hot-plug layer sees it (no serial numbers: not needed)."""

    path: str  # sysfs path, stable while plugged
    vendor_id: str
    product_id: str
    product: str | None
    kind: str  # "printer", "scanner", "camera", "audio", "other"


class UsbChange(StrEnum):
    ADDED = "added"
    REMOVED = "removed"


@runtime_checkable
class HotPlug(Protocol):
    async def devices(self) -> list[UsbDevice]: ...
    def watch(self, callback: Callable[[UsbChange, UsbDevice], None]) -> None:
        """Call ``callback`` on the loop for each plug/unplug from now on.

        Where the platform gives no device events, this is logged and nothing is delivered.
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """What the system probes read: the non-peripheral part of telemetry."""

    uptime_s: float
    cpu_temperature_c: float | None
    throttled_raw: int | None
    load: tuple[float, float, float]
    memory_used_pct: float
    disk_used_pct: float
    disk_free_bytes: int
    interfaces: list[tuple[str, bool, list[str]]]  # (name, up, addresses)


@runtime_checkable
class SystemProbe(Protocol):
    async def snapshot(self) -> SystemSnapshot: ...
