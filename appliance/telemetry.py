"""Assemble one telemetry message from the system probe and the peripherals.

Everything is read concurrently. A probe or peripheral that raises is reported, not
propagated: a peripheral becomes health *error* with a short detail, a failed system probe
leaves zeros/None in its fields (and is logged), so a broken part can never stop the
counter from reporting the rest. Cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from appliance.hw._bridge import short_error
from appliance.hw.ports import Button, Camera, Printer, Scanner, SystemProbe, SystemSnapshot
from guichet.contract import (
    AudioRoute,
    ButtonState,
    DeviceHealth,
    NetworkInterface,
    Peripheral,
    Peripherals,
    PrinterState,
    ScannerState,
    Telemetry,
    Throttling,
    utcnow,
)

logger = logging.getLogger(__name__)

# Raspberry Pi firmware get_throttled bits (documented with vcgencmd).
UNDER_VOLTAGE = 1 << 0
FREQUENCY_CAPPED = 1 << 1
THROTTLED = 1 << 2
SOFT_TEMPERATURE_LIMIT = 1 << 3
OCCURRED_SINCE_BOOT = 0xF << 16  # bits 16-19: the same four conditions, since boot
READ_TIMEOUT_S = 20.0  # above every adapter's own timeout: a last line of defence
MAX_INTERFACES = 16  # the contract's bound (a Docker host has dozens of veths)
MAX_ADDRESSES = 16

P = TypeVar("P", bound=Peripheral)


def decode_throttling(raw: int | None) -> Throttling | None:
    if raw is None:
        return None
    return Throttling(
        raw=raw,
        under_voltage=bool(raw & UNDER_VOLTAGE),
        frequency_capped=bool(raw & FREQUENCY_CAPPED),
        throttled=bool(raw & THROTTLED),
        soft_temperature_limit=bool(raw & SOFT_TEMPERATURE_LIMIT),
        occurred_since_boot=bool(raw & OCCURRED_SINCE_BOOT),
    )


async def _guarded(name: str, read: Callable[[], Awaitable[P]], failed: type[P]) -> P:
    try:
        return await asyncio.wait_for(read(), READ_TIMEOUT_S)
    except TimeoutError:
        logger.warning("%s did not answer within %s s", name, READ_TIMEOUT_S)
        return failed(health=DeviceHealth.ERROR, detail="pas de réponse à temps")
    except Exception as exc:
        logger.warning("%s state failed: %s", name, exc, exc_info=True)
        return failed(health=DeviceHealth.ERROR, detail=short_error(exc))


async def _button_state(button: Button) -> ButtonState:
    return button.state()


UNKNOWN_SYSTEM = SystemSnapshot(
    uptime_s=0.0,
    cpu_temperature_c=None,
    throttled_raw=None,
    load=(0.0, 0.0, 0.0),
    memory_used_pct=0.0,
    disk_used_pct=0.0,
    disk_free_bytes=0,
    interfaces=[],
)


async def _system(probe: SystemProbe) -> SystemSnapshot:
    try:
        return await asyncio.wait_for(probe.snapshot(), READ_TIMEOUT_S)
    except Exception as exc:
        logger.error("system probe failed, reporting unknowns: %s", short_error(exc))
        return UNKNOWN_SYSTEM


def _network(snapshot: SystemSnapshot) -> list[NetworkInterface]:
    return [
        NetworkInterface(name=name[:32], up=up, addresses=addresses[:MAX_ADDRESSES])
        for name, up, addresses in snapshot.interfaces[:MAX_INTERFACES]
    ]


def _pct(value: float) -> float:
    return min(100.0, max(0.0, value))


async def collect(
    probe: SystemProbe,
    camera: Camera,
    printer: Printer,
    scanner: Scanner,
    button: Button,
    audio_route: AudioRoute | None = None,
) -> Telemetry:
    """One telemetry message; never raises except on cancellation."""
    system, camera_state, printer_state, scanner_state, button_state = await asyncio.gather(
        _system(probe),
        _guarded("camera", camera.state, Peripheral),
        _guarded("printer", printer.state, PrinterState),
        _guarded("scanner", scanner.state, ScannerState),
        _guarded("button", lambda: _button_state(button), ButtonState),
    )
    return Telemetry(
        at=utcnow(),
        uptime_s=max(0.0, system.uptime_s),
        cpu_temperature_c=system.cpu_temperature_c,
        throttling=decode_throttling(system.throttled_raw),
        load=system.load,
        memory_used_pct=_pct(system.memory_used_pct),
        disk_used_pct=_pct(system.disk_used_pct),
        disk_free_bytes=max(0, system.disk_free_bytes),
        network=_network(system),
        peripherals=Peripherals(
            camera=camera_state, printer=printer_state, scanner=scanner_state, button=button_state
        ),
        clock_synchronised=system.clock_synchronised,
        audio_route=audio_route,
    )
