"""The counter's own health: uptime, temperature, Pi throttling, load, memory, disk, network,
and whether its clock is synchronised (a Pi has no real-time clock: after a power cut it
runs on its last saved time until NTP answers).

Every reading is independent: one that fails (no thermal zone on a laptop, no Pi firmware
interface on x86) yields ``None`` or is skipped, never the whole snapshot. All of it runs in
one worker thread per snapshot (psutil and sysfs reads are blocking file I/O).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

from appliance.hw.ports import SystemSnapshot

logger = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")  # millidegrees Celsius
# The Pi firmware driver's throttling flags, as hex (Raspberry Pi kernels ≥ 5.x).
PI_GET_THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
VCGENCMD_TIMEOUT_S = 2.0  # the firmware mailbox answers in ms; never hang a tick on it
PREFERRED_SENSORS = ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "acpitz")
MAX_ADDRESSES = 16  # the contract's bound per interface
SKIPPED_INTERFACES = frozenset({"lo"})
# systemd's ntp_synced() (what `timedatectl show -p NTPSynchronized` reports): the kernel's
# maximum clock error, from adjtimex(2), under 16 s. The kernel sets it to 16 s at boot and
# lets it grow until a time daemon (systemd-timesyncd, chrony) disciplines the clock.
SYNCED_MAX_ERROR_US = 16_000_000
TIMEDATECTL_TIMEOUT_S = 2.0


class _Timex(ctypes.Structure):
    """The head of ``struct timex`` (adjtimex(2)); the rest is room the kernel may fill."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_byte * 256),
    ]


def clock_synchronised_from_adjtimex() -> bool | None:
    """adjtimex(2) with no change requested (modes = 0): a read, cheap; None off Linux."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        if libc.adjtimex(ctypes.byref(timex)) < 0:
            return None
    except (OSError, AttributeError):
        return None
    return int(timex.maxerror) < SYNCED_MAX_ERROR_US


def parse_ntp_synchronized(text: str) -> bool | None:
    """``timedatectl show -p NTPSynchronized --value`` → True/False; None if unreadable."""
    value = text.strip().rpartition("=")[2].strip().lower()
    return {"yes": True, "no": False}.get(value)


def read_clock_synchronised() -> bool | None:
    """Whether the system clock is synchronised, as ``timedatectl`` would say."""
    synced = clock_synchronised_from_adjtimex()
    if synced is not None:
        return synced
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  # fixed argv, absolute path from PATH lookup
            [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEDATECTL_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("timedatectl failed: %s", exc)
        return None
    return parse_ntp_synchronized(done.stdout)


def read_cpu_temperature(zone: Path = THERMAL_ZONE) -> float | None:
    """°C from the first thermal zone (the SoC on a Pi), else from psutil's sensors."""
    try:
        return int(zone.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    sensors = getattr(psutil, "sensors_temperatures", None)
    if sensors is None:
        return None
    try:
        readings = sensors()
    except OSError:
        return None
    for name in (*PREFERRED_SENSORS, *readings):
        if readings.get(name):
            return float(readings[name][0].current)
    return None


def parse_throttled(text: str) -> int | None:
    """``"throttled=0x50005"`` (vcgencmd) or ``"50005"`` (sysfs, hex) → 0x50005."""
    value = text.strip().rpartition("=")[2].strip()
    try:
        return int(value, 16)
    except ValueError:
        return None


def read_throttled(sysfs: Path = PI_GET_THROTTLED) -> int | None:
    """The firmware's throttling flags, or ``None`` off a Pi."""
    try:
        return parse_throttled(sysfs.read_text())
    except OSError:
        pass
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  # fixed argv, absolute path from PATH lookup
            [vcgencmd, "get_throttled"],
            capture_output=True,
            text=True,
            timeout=VCGENCMD_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("vcgencmd get_throttled failed: %s", exc)
        return None
    return parse_throttled(done.stdout)


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the data dir may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def read_interfaces() -> list[tuple[str, bool, list[str]]]:
    """(name, up, IPv4 and IPv6 addresses) for each interface but loopback."""
    stats = psutil.net_if_stats()
    result = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name in SKIPPED_INTERFACES:
            continue
        ips = [
            a.address.split("%", 1)[0]  # drop the IPv6 zone ("%eth0")
            for a in addresses
            if a.family in (socket.AF_INET, socket.AF_INET6)
        ]
        up = bool(stats[name].isup) if name in stats else False
        result.append((name, up, ips[:MAX_ADDRESSES]))
    return result


class PsutilSystemProbe:
    """Reads the machine this process runs on; disk figures are for ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    async def snapshot(self) -> SystemSnapshot:
        return await asyncio.to_thread(self._read)

    def _read(self) -> SystemSnapshot:
        disk = psutil.disk_usage(str(existing_parent(self._data_dir)))
        load = os.getloadavg()
        return SystemSnapshot(
            uptime_s=max(0.0, time.time() - psutil.boot_time()),
            cpu_temperature_c=read_cpu_temperature(),
            throttled_raw=read_throttled(),
            load=(load[0], load[1], load[2]),
            memory_used_pct=float(psutil.virtual_memory().percent),
            disk_used_pct=float(disk.percent),
            disk_free_bytes=int(disk.free),
            interfaces=read_interfaces(),
            clock_synchronised=read_clock_synchronised(),
        )
