"""The scanner port over SANE, through python-sane.

Telemetry only needs to know which scanners SANE sees, so this adapter never opens a
device: it asks ``sane.get_devices()`` and keeps the answer for ``refresh_s`` (a network
backend probe can take seconds). Hot-plug handlers call ``invalidate()`` so a scanner
plugged in shows up at the next tick. SANE is process-global and not thread-safe: one
lock serialises every call, and ``sane.init()`` runs once per process (libsane reads
``SANE_CONFIG_DIR`` at that moment and never again).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from appliance.errors import DocumentError
from appliance.hw._bridge import short_error
from appliance.hw.ports import ScannedPage, ScanSettings
from guichet.contract import DeviceHealth, ScannerState

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


async def _in_sane_thread(call: Callable[[], _T], timeout_s: float) -> _T:
    """``call`` (libsane) in a worker thread; then SIGPIPE ignored again. libsane (its
    backends) gives SIGPIPE back its default while it works, and with it a write to a
    closed socket — the fleet link, the call's signalling — would kill the whole counter
    instead of raising ``BrokenPipeError`` (the test suite names such tests)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), timeout_s)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)


SCANNER_REFRESH_S = 300.0  # device lists change only on hot-plug, which invalidates early
SANE_TIMEOUT_S = 15.0  # the net backend's discovery alone can take ~3.5 s
SCAN_TIMEOUT_S = 600.0  # a 50-sheet feeder at 300 dpi colour on a slow USB scanner
MAX_DEVICES = 16  # the contract's bound on ScannerState.devices

_SANE_LOCK = threading.Lock()
_sane_initialised = False


@dataclass(frozen=True, slots=True)
class SaneDevice:
    name: str  # e.g. "test:0", "genesys:libusb:001:004"
    vendor: str
    model: str
    kind: str  # "flatbed scanner", "virtual device", …


class SaneUnavailableError(Exception):
    """python-sane is not installed (kept inside this module)."""


def sane_initialised() -> bool:
    """Whether this process has initialised libsane (its config is then fixed)."""
    return _sane_initialised


def _init_locked() -> None:
    """With ``_SANE_LOCK`` held: ``sane.init()`` once per process."""
    global _sane_initialised  # libsane keeps its own state per process
    try:
        import sane  # optional: only on counters with a scanner
    except ImportError as exc:
        raise SaneUnavailableError("python-sane not installed") from exc
    if not _sane_initialised:
        version = sane.init()
        _sane_initialised = True
        logger.debug("SANE initialised, version %s", version)


def list_sane_devices() -> list[SaneDevice]:
    """Blocking: every device SANE can see right now. Raises ``_sane.error`` on failure."""
    with _SANE_LOCK:
        _init_locked()  # raises SaneUnavailableError without python-sane
        import sane

        raw = sane.get_devices()
    return [SaneDevice(str(n), str(v), str(m), str(k)) for n, v, m, k in raw]


class SaneScanner:
    """Scanners seen by SANE; ``device=None`` means "any scanner will do"."""

    def __init__(self, device: str | None = None, *, refresh_s: float = SCANNER_REFRESH_S) -> None:
        self._device = device
        self._refresh_s = refresh_s
        self._cached: list[SaneDevice] | None = None
        self._cached_at = 0.0
        # Device options set after ours before each scan (a model's quirks; tests use the
        # test backend's ``read_return_value`` to make it jam).
        self.extra_options: dict[str, object] = {}

    def invalidate(self) -> None:
        """Forget the cached device list (a USB device came or went)."""
        self._cached = None

    async def state(self) -> ScannerState:
        try:
            devices = await self._devices()
        except SaneUnavailableError as exc:
            return ScannerState(health=DeviceHealth.ABSENT, detail=str(exc))
        except TimeoutError:
            return ScannerState(health=DeviceHealth.ERROR, detail="SANE n'a pas répondu à temps")
        except Exception as exc:  # _sane.error and friends: SANE itself is broken
            logger.warning("SANE device listing failed: %s", exc)
            return ScannerState(health=DeviceHealth.ERROR, detail=short_error(exc))
        return self._judge(devices)

    async def _devices(self) -> list[SaneDevice]:
        fresh = time.monotonic() - self._cached_at < self._refresh_s
        if self._cached is not None and fresh:
            return self._cached
        devices = await _in_sane_thread(list_sane_devices, SANE_TIMEOUT_S)
        self._cached, self._cached_at = devices, time.monotonic()
        return devices

    def _judge(self, devices: list[SaneDevice]) -> ScannerState:
        names = [d.name for d in devices][:MAX_DEVICES]
        if self._device is None:
            chosen = devices[0] if devices else None
        else:
            chosen = next((d for d in devices if d.name == self._device), None)
        if chosen is None:
            wanted = self._device or "any scanner"
            return ScannerState(
                health=DeviceHealth.ABSENT, detail=f"introuvable : {wanted}", devices=names
            )
        model = f"{chosen.vendor} {chosen.model}".strip()[:128] or None
        return ScannerState(health=DeviceHealth.OK, model=model, devices=names)

    # --- scanning (DocumentScanner) ---------------------------------------------------------

    async def _device_name(self) -> str:
        try:
            devices = await self._devices()
        except Exception as exc:
            raise DocumentError("scanner_unavailable", "Le scanner est indisponible.") from exc
        state = self._judge(devices)
        if state.health is not DeviceHealth.OK:
            raise DocumentError("scanner_unavailable", "Aucun scanner n'est branché au guichet.")
        return self._device or devices[0].name

    async def has_feeder(self) -> bool:
        from appliance.hw.sane import scan as sane_scan

        try:
            name = await self._device_name()
        except DocumentError:
            return False

        def probe() -> bool:
            import sane

            with _SANE_LOCK:
                _init_locked()
                device = sane.open(name)
                try:
                    return sane_scan.has_feeder(device)
                finally:
                    device.close()

        try:
            return await _in_sane_thread(probe, SANE_TIMEOUT_S)
        except Exception as exc:  # a scanner that cannot be opened has no usable feeder
            logger.debug("feeder probe failed: %s", exc)
            return False

    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        from appliance.hw.sane import scan as sane_scan

        name = await self._device_name()
        loop = asyncio.get_running_loop()
        extra = dict(self.extra_options)

        def page_done(page: ScannedPage) -> None:  # in the worker thread
            loop.call_soon_threadsafe(on_page, page)

        def run() -> list[ScannedPage]:
            with _SANE_LOCK:
                _init_locked()
                return sane_scan.scan_pages(name, settings, extra, page_done)

        try:
            return await _in_sane_thread(run, SCAN_TIMEOUT_S)
        except TimeoutError:
            raise DocumentError("scanner_failed", "Le scanner ne répond plus.") from None
