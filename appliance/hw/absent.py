"""Peripherals configured as ``none``: always reported absent, never an error.

A counter without a screen (``screen = "none"``) shows nothing and drops every frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from appliance.hw.ports import ScreenInfo, ScreenState
from guichet.contract import DeviceHealth, Peripheral, PrinterState, ScannerState

if TYPE_CHECKING:
    import av

NOT_CONFIGURED = "not configured"


class AbsentCamera:
    async def state(self) -> Peripheral:
        return Peripheral(health=DeviceHealth.ABSENT, detail=NOT_CONFIGURED)


class AbsentPrinter:
    async def state(self) -> PrinterState:
        return PrinterState(health=DeviceHealth.ABSENT, detail=NOT_CONFIGURED)


class AbsentScanner:
    async def state(self) -> ScannerState:
        return ScannerState(health=DeviceHealth.ABSENT, detail=NOT_CONFIGURED)


class AbsentScreen:
    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None:
        pass

    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None:
        pass

    def close(self) -> None:
        pass
