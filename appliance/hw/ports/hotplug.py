"""USB hot-plug: the port and its fake (``plug()``/``unplug()``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


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
