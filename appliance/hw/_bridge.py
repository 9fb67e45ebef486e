"""Hand a library thread's callback to the asyncio loop, safely.

Hardware libraries (gpiozero, pyudev) call us back in their own threads. The rest of the
appliance is single-threaded asyncio, so every such callback is re-posted to the loop with
``loop.call_soon_threadsafe``. A loop that has already closed (shutdown in progress) drops
the callback with a debug log instead of raising in the library's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVarTuple, Unpack

logger = logging.getLogger(__name__)

Ts = TypeVarTuple("Ts")


def post_to_loop(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[Unpack[Ts]], object],
    *args: *Ts,
) -> None:
    """Run ``callback(*args)`` on ``loop``; callable from any thread."""
    if loop.is_closed():
        logger.debug("loop closed, dropping hardware callback %r", callback)
        return
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # closed between the check and the call
        logger.debug("loop closed, dropping hardware callback %r", callback)


def short_error(exc: BaseException, limit: int = 200) -> str:
    """A one-line description of an exception, short enough for a telemetry ``detail``."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
