"""System probes (the non-peripheral part of telemetry): the port and its fake, plausible
slowly drifting readings; and the box's power (remote support's reboot) with its fake."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from appliance.errors import HardwareError


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
    clock_synchronised: bool | None = None  # NTP-synchronised per the kernel; None: unknown


@runtime_checkable
class SystemProbe(Protocol):
    async def snapshot(self) -> SystemSnapshot: ...


TEMPERATURE_BASE_C = 52.0  # a Pi 4 in a closed box idles around 50-55 °C


TEMPERATURE_SWING_C = 6.0


DRIFT_PERIOD_S = 600.0  # values drift over ten minutes: plausible charts, not noise


DISK_TOTAL_BYTES = 32 * 1024**3  # a 32 GB SD card


class SimulatedSystemProbe:
    """Plausible, slowly drifting readings; ``seed`` makes each counter look different."""

    def __init__(
        self,
        *,
        seed: int = 0,
        throttled_raw: int | None = 0,
        clock_synchronised: bool | None = True,
    ) -> None:
        rng = random.Random(seed)
        self._phase = rng.uniform(0, 2 * math.pi)
        self._offset_c = rng.uniform(-4.0, 4.0)
        self._disk_used_pct = rng.uniform(20.0, 45.0)
        self._started = time.monotonic()
        self._address = f"192.168.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
        self.throttled_raw = throttled_raw
        self.clock_synchronised = clock_synchronised  # a test may set it, as NTP would

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
            clock_synchronised=self.clock_synchronised,
        )


@runtime_checkable
class SystemPower(Protocol):
    """Restarting the whole box (remote support's reboot). ``reboot`` returns once the
    system has taken the order (the counter is then stopped by it, in order); it raises
    ``HardwareError`` with a French reason when it cannot."""

    async def reboot(self) -> None: ...


class SimulatedSystemPower:
    """Counts the reboots asked for (demo, tests); ``refusal``, when set, is raised instead."""

    def __init__(self) -> None:
        self.reboots = 0
        self.refusal: str | None = None

    async def reboot(self) -> None:
        if self.refusal is not None:
            raise HardwareError(self.refusal)
        self.reboots += 1
