"""Peripherals configured as ``none``: always reported absent, never an error."""

from __future__ import annotations

from guichet.contract import DeviceHealth, Peripheral, PrinterState, ScannerState

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
