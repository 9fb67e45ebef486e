"""What the fleet server may change while the counter runs, and where it is kept.

The server pushes a retained, versioned ``DeviceConfig``; commands may change single
settings (such as the telemetry interval). ``RuntimeSettings`` holds the current values
and a change counter; any number of loops wait on it (``wait_changed``) without missing a
change that happened while they were busy. The last configuration received is stored in
the data directory, so a counter that restarts while the broker is unreachable still runs
with what the server last said, not with the file's defaults.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from guichet import contract

logger = logging.getLogger(__name__)

STORED_CONFIG_NAME = "device-config.json"
MIN_TELEMETRY_INTERVAL_S = 5  # same floor as contract.DeviceConfig: protects the broker
MAX_TELEMETRY_INTERVAL_S = 3600  # the server calls a counter silent after 3 × this


class RuntimeSettings:
    """The current values, and ``generation``: incremented on every change."""

    def __init__(self, telemetry_interval_s: int, *, store_dir: Path | None = None) -> None:
        self._telemetry_interval_s = telemetry_interval_s
        self._store = store_dir / STORED_CONFIG_NAME if store_dir is not None else None
        self.device_config: contract.DeviceConfig | None = None
        self.generation = 0
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def telemetry_interval_s(self) -> int:
        return self._telemetry_interval_s

    async def wait_changed(self, since: int) -> int:
        """Return the generation as soon as it differs from ``since``."""
        while self.generation == since:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)
        return self.generation

    def set_telemetry_interval(self, seconds: int, *, source: str) -> None:
        if not MIN_TELEMETRY_INTERVAL_S <= seconds <= MAX_TELEMETRY_INTERVAL_S:
            raise ValueError(
                f"intervalle hors limites ({MIN_TELEMETRY_INTERVAL_S}–{MAX_TELEMETRY_INTERVAL_S} s)"
            )
        if seconds != self._telemetry_interval_s:
            logger.info(
                "telemetry interval changed",
                extra={"from_s": self._telemetry_interval_s, "to_s": seconds, "source": source},
            )
            self._telemetry_interval_s = seconds
            self._changed()

    async def load_stored(self) -> None:
        """Apply the configuration stored by an earlier run, if any (a bad file is ignored)."""
        if self._store is None:
            return
        try:
            payload = await asyncio.to_thread(self._store.read_bytes)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("stored device config unreadable", extra={"error": str(exc)})
            return
        try:
            config = contract.decode(contract.Kind.CONFIG, payload)
        except contract.ContractError as exc:
            logger.warning("stored device config invalid; ignored", extra={"error": str(exc)})
            return
        if isinstance(config, contract.DeviceConfig):
            self._apply(config)

    async def apply(self, config: contract.DeviceConfig) -> bool:
        """Apply a configuration from the server; False (and no change) for a known version."""
        current = self.device_config
        if current is not None and config.version <= current.version:
            if config.version < current.version:
                logger.warning(
                    "older device config ignored",
                    extra={"version": config.version, "current_version": current.version},
                )
            return False
        # Stored before it is applied, so before the change is announced: whoever sees the
        # new values (the server in the next status) may count on the file. Applied even if
        # the write fails or its caller is cancelled meanwhile, as the server said so.
        try:
            if self._store is not None:
                await asyncio.to_thread(_write_atomically, self._store, contract.encode(config))
        finally:
            self._apply(config)
        return True

    def _apply(self, config: contract.DeviceConfig) -> None:
        self.device_config = config
        if config.telemetry_interval_s is not None:
            self.set_telemetry_interval(config.telemetry_interval_s, source="config")
        logger.info("device config applied", extra={"version": config.version})
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a power cut leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
