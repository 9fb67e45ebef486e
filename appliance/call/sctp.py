"""The data channel's SCTP association, started as the browser starts its own.

aiortc 1.16 opens an association with a congestion window of 3 packets (RFC 4960's ~4 KB)
and grows it by one packet per SACK; the browser acknowledges every second packet, so a
scan's PDF crosses a rural line in many round trips, and each random loss halves the window
again. Chromium's own SCTP (dcsctp) starts at 10 packets (``cwnd_mtus_initial``, after RFC
6928's argument for TCP) with the same 4-packet floor after a loss. ``start_like_the_browser``
gives aiortc's association that first window, once, when the browser opens its channel
(nothing large has been sent yet). aiortc has no public setting for it: the window is its
private ``_cwnd``; if a new aiortc renames it, this logs a warning and changes nothing.
"""

from __future__ import annotations

import logging

from aiortc import RTCSctpTransport
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH

logger = logging.getLogger(__name__)

INITIAL_WINDOW_PACKETS = 10  # dcsctp's cwnd_mtus_initial: what the browser starts with
INITIAL_WINDOW_BYTES = INITIAL_WINDOW_PACKETS * USERDATA_MAX_LENGTH


def start_like_the_browser(transport: RTCSctpTransport) -> None:
    """Raise the association's congestion window to the browser's initial window."""
    window = getattr(transport, "_cwnd", None)
    if not isinstance(window, int):
        logger.warning("aiortc's SCTP has no _cwnd: its initial window is left as it is")
        return
    if window < INITIAL_WINDOW_BYTES:
        transport._cwnd = INITIAL_WINDOW_BYTES  # private: see the docstring
