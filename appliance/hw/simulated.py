"""Simulated hardware behind the same ports, for laptops, the demo and tests.

Each fake holds its state in plain attributes and exposes the verbs a demo or a test needs
(``press()``, ``set_reasons([...])``, ``plug(...)``). Callbacks are delivered on the loop
with ``call_soon``, like the real adapters deliver theirs, so code under test never runs
inside the caller's stack frame.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Unpack

from appliance.errors import DocumentError
from appliance.hw.ports import (
    LightPattern,
    PrintJobStatus,
    ScannedPage,
    ScanSettings,
    ScreenInfo,
    ScreenState,
    SystemSnapshot,
    UsbChange,
    UsbDevice,
)
from appliance.hw.printer_status import (
    QueueState,
    absent_printer,
    can_print,
    french_reason,
    printer_state,
)
from guichet.contract import ButtonState, DeviceHealth, Peripheral, PrinterState, ScannerState

if TYPE_CHECKING:
    import av

SIMULATED_PRINTER_MODEL = "Simulated Printer"
SIMULATED_SCANNER = "simulated:0"
SIMULATED_CAMERA_MODEL = "Simulated Camera"
TEMPERATURE_BASE_C = 52.0  # a Pi 4 in a closed box idles around 50-55 °C
TEMPERATURE_SWING_C = 6.0
DRIFT_PERIOD_S = 600.0  # values drift over ten minutes: plausible charts, not noise
DISK_TOTAL_BYTES = 32 * 1024**3  # a 32 GB SD card


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
            return ButtonState(health=DeviceHealth.ABSENT, detail="closed")
        return ButtonState(
            health=DeviceHealth.OK, model="simulated", pressed=self._pressed_at is not None
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


@dataclass(frozen=True, slots=True)
class ShownState:
    """One ``Screen.show`` call, as ``SimulatedScreen`` recorded it."""

    state: ScreenState
    info: ScreenInfo


class SimulatedScreen:
    """Records what would be shown: every state (``history``) and how many frames came."""

    def __init__(self) -> None:
        self.history: list[ShownState] = []
        self.frames = 0
        self.self_frames = 0
        self.last_frame_size: tuple[int, int] | None = None
        self.closed = False

    @property
    def state(self) -> ScreenState | None:
        return self.history[-1].state if self.history else None

    @property
    def info(self) -> ScreenInfo:
        return self.history[-1].info if self.history else {}

    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None:
        if not self.closed:
            self.history.append(ShownState(ScreenState(state), info))

    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None:
        if self.closed or self.state != ScreenState.IN_CALL:
            return
        if self_view:
            self.self_frames += 1
        else:
            self.frames += 1
            self.last_frame_size = (frame.width, frame.height)

    def close(self) -> None:
        self.closed = True


class SimulatedCamera:
    def __init__(self, *, present: bool = True, model: str = SIMULATED_CAMERA_MODEL) -> None:
        self.present = present
        self.model = model

    async def state(self) -> Peripheral:
        if not self.present:
            return Peripheral(health=DeviceHealth.ABSENT, detail="unplugged")
        return Peripheral(health=DeviceHealth.OK, model=self.model)


class SimulatedPrinter:
    """A CUPS-like queue whose state, reasons and message are set by hand."""

    def __init__(self, *, model: str = SIMULATED_PRINTER_MODEL) -> None:
        self.model = model
        self.present = True
        self.queue_state: QueueState = "idle"
        self.reasons: list[str] = []
        self.message: str | None = None
        self.jobs: list[str] = []  # titles of the jobs submitted

    def set_reasons(self, reasons: Iterable[str], message: str | None = None) -> None:
        self.reasons, self.message = list(reasons), message

    def stop(self, message: str = "printer stopped") -> None:
        """Like CUPS after a backend failure: stopped, paused, with a message."""
        self.queue_state, self.message = "stopped", message
        if "paused" not in self.reasons:
            self.reasons.append("paused")

    def resume(self) -> None:
        """Like ``cupsenable``: idle again, all reasons cleared."""
        self.queue_state, self.reasons, self.message = "idle", [], None

    async def state(self) -> PrinterState:
        if not self.present:
            return absent_printer("unplugged")
        ipp = {"idle": 3, "processing": 4, "stopped": 5}.get(self.queue_state)
        return printer_state(
            ipp_state=ipp, reasons=self.reasons, message=self.message, model=self.model
        )

    # DocumentPrinter: jobs "print" at once (titles kept; documents never read).
    async def submit(self, path: str, title: str) -> int:
        state = await self.state()
        if not can_print(state):
            raise DocumentError("printer_unavailable", french_reason(state))
        self.jobs.append(title)
        return len(self.jobs)

    async def job_status(self, job_id: int) -> PrintJobStatus:
        state = await self.state()
        if not can_print(state):
            return PrintJobStatus("failed", french_reason(state))
        return PrintJobStatus("done")

    async def cancel(self, job_id: int) -> None:
        return None


class SimulatedScanner:
    """The SANE device list, settable; ``device`` as in ``SaneScanner``."""

    def __init__(
        self, device: str | None = None, *, devices: Iterable[str] = (SIMULATED_SCANNER,)
    ) -> None:
        self._device = device
        self.devices = list(devices)
        self.feeder = True
        self.fault: str | None = None

    async def state(self) -> ScannerState:
        wanted = self._device
        found = (wanted in self.devices) if wanted else bool(self.devices)
        if not found:
            detail = f"not found: {wanted or 'any scanner'}"
            return ScannerState(health=DeviceHealth.ABSENT, detail=detail, devices=self.devices)
        return ScannerState(health=DeviceHealth.OK, model="Simulated Scanner", devices=self.devices)

    # DocumentScanner: blank A4 pages with a dark band; ``fault`` is a SANE status text
    # ("Document feeder jammed"…) raised, translated, by the next scan.
    async def has_feeder(self) -> bool:
        return self.feeder

    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        from appliance.hw.sane_scan import translate

        if self.fault is not None:
            raise translate(RuntimeError(self.fault))
        pages = []
        for _ in range(SIMULATED_FEEDER_PAGES if settings.source == "adf" else 1):
            await asyncio.sleep(0)
            page = blank_page(settings)
            pages.append(page)
            on_page(page)
        return pages


SIMULATED_FEEDER_PAGES = 3


def blank_page(settings: ScanSettings) -> ScannedPage:
    """A white A4 page at ``settings``' resolution with a dark band where a title would be."""
    width, height = round(8.27 * settings.resolution), round(11.69 * settings.resolution)
    mode = {"color": "RGB", "gray": "L", "lineart": "1"}[settings.mode]
    if mode == "1":
        row_bytes = (width + 7) // 8
        white, ink = b"\xff" * row_bytes, b"\x00" * row_bytes
    else:
        depth = 3 if mode == "RGB" else 1
        white, ink = b"\xff" * (width * depth), b"\x20" * (width * depth)
    band = settings.resolution // 3
    rows = white * band + ink * band + white * (height - 2 * band)
    return ScannedPage(width, height, mode, settings.resolution, rows)


class SimulatedHotPlug:
    """USB devices plugged and unplugged by calling ``plug()``/``unplug()``."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._devices: dict[str, UsbDevice] = {}
        self._callback: Callable[[UsbChange, UsbDevice], None] | None = None

    async def devices(self) -> list[UsbDevice]:
        return list(self._devices.values())

    def watch(self, callback: Callable[[UsbChange, UsbDevice], None]) -> None:
        self._callback = callback

    def plug(self, device: UsbDevice) -> None:
        self._devices[device.path] = device
        self._emit(UsbChange.ADDED, device)

    def unplug(self, path: str) -> None:
        device = self._devices.pop(path, None)
        if device is not None:
            self._emit(UsbChange.REMOVED, device)

    def close(self) -> None:
        self._callback = None

    def _emit(self, change: UsbChange, device: UsbDevice) -> None:
        if self._callback is not None:
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon_threadsafe(self._callback, change, device)


class SimulatedSystemProbe:
    """Plausible, slowly drifting readings; ``seed`` makes each counter look different."""

    def __init__(self, *, seed: int = 0, throttled_raw: int | None = 0) -> None:
        rng = random.Random(seed)
        self._phase = rng.uniform(0, 2 * math.pi)
        self._offset_c = rng.uniform(-4.0, 4.0)
        self._disk_used_pct = rng.uniform(20.0, 45.0)
        self._started = time.monotonic()
        self._address = f"192.168.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
        self.throttled_raw = throttled_raw

    async def snapshot(self) -> SystemSnapshot:
        elapsed = time.monotonic() - self._started
        wave = math.sin(2 * math.pi * elapsed / DRIFT_PERIOD_S + self._phase)
        load = max(0.0, 0.35 + 0.25 * wave)
        disk_pct = min(99.0, self._disk_used_pct + elapsed / 86_400)  # +1 %/day of logs
        return SystemSnapshot(
            uptime_s=elapsed + 3600.0,
            cpu_temperature_c=round(
                TEMPERATURE_BASE_C + self._offset_c + TEMPERATURE_SWING_C * wave, 1
            ),
            throttled_raw=self.throttled_raw,
            load=(round(load, 2), round(load * 0.9, 2), round(load * 0.8, 2)),
            memory_used_pct=round(38.0 + 5.0 * wave, 1),
            disk_used_pct=round(disk_pct, 1),
            disk_free_bytes=int(DISK_TOTAL_BYTES * (1 - disk_pct / 100)),
            interfaces=[("eth0", True, [self._address]), ("wlan0", False, [])],
        )
