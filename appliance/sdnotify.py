"""A tiny systemd notify client: READY=1, WATCHDOG=1, STOPPING=1 over an AF_UNIX datagram.

systemd sets ``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC`` when the unit has ``WatchdogSec=``);
without it every call is a no-op, so the agent runs the same on a laptop. No dependency:
the protocol is one datagram of ``KEY=VALUE`` lines. An abstract socket name starts with
``@``, which stands for a leading NUL byte.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)

WATCHDOG_FRACTION = 0.5  # ping at half the watchdog period, as sd_watchdog_enabled(3) advises


def _address(env: dict[str, str] | os._Environ[str]) -> str | None:
    address = env.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return None
    return "\0" + address[1:] if address.startswith("@") else address


def notify(state: str, *, env: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1"); False when not under systemd or on error."""
    address = _address(env if env is not None else os.environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        logger.warning("sd_notify failed", extra={"state": state, "error": str(exc)})
        return False
    return True


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1, or None if systemd does not watch this process."""
    values = env if env is not None else os.environ
    if _address(values) is None:
        return None
    try:
        usec = int(values.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = values.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000 * WATCHDOG_FRACTION
