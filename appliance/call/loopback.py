"""Let aioice offer 127.0.0.1 as a host candidate — for tests and demos in a loopback-only
network namespace (``unshare -n``), never in production.

aioice's ``get_host_addresses`` skips 127.0.0.1 on purpose, so two peers in a namespace
that has only ``lo`` gather no candidate and never connect. ``enable_loopback_candidates()``
wraps that function to add 127.0.0.1; it is applied only when asked for: the config key
``call.ice_loopback = true`` or the environment variable ``GUICHET_ICE_LOOPBACK=1``
(``enable_if_requested``). It is process-wide and idempotent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import aioice.ice

logger = logging.getLogger(__name__)

ENV_FLAG = "GUICHET_ICE_LOOPBACK"
LOOPBACK = "127.0.0.1"

_original: Callable[[bool, bool], list[str]] | None = None


def enable_loopback_candidates() -> None:
    global _original
    if _original is not None:
        return
    original = aioice.ice.get_host_addresses
    _original = original

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and LOOPBACK not in addresses:
            addresses.append(LOOPBACK)
        return addresses

    setattr(aioice.ice, "get_host_addresses", with_loopback)  # noqa: B010
    logger.warning("ICE offers 127.0.0.1 (loopback test mode)")


def disable_loopback_candidates() -> None:
    global _original
    if _original is not None:
        setattr(aioice.ice, "get_host_addresses", _original)  # noqa: B010
        _original = None


def enable_if_requested(configured: bool = False) -> bool:
    """Apply the patch if the config or ``GUICHET_ICE_LOOPBACK=1`` asks; say whether it is on."""
    if configured or os.environ.get(ENV_FLAG) == "1":
        enable_loopback_candidates()
    return _original is not None
