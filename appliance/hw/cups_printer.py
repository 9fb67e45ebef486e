"""The printer port over CUPS, through pycups.

Each ``state()`` opens a short-lived connection to the scheduler in a worker thread (pycups
connections are not thread-safe, and one request every telemetry tick costs ~1 ms over the
local socket) and asks for the queue's state attributes. Every failure mode maps to a
health: pycups missing, scheduler not running, or queue unknown → *absent*; any other
CUPS error or a scheduler that does not answer in time → *error*.
"""

from __future__ import annotations

import asyncio
import logging

from appliance.hw._bridge import short_error
from appliance.hw.printer_status import absent_printer, failed_printer, state_from_attributes
from guichet.contract import PrinterState

logger = logging.getLogger(__name__)

CUPS_TIMEOUT_S = 5.0  # a healthy local scheduler answers in ~1 ms; never stall telemetry
IPP_NOT_FOUND = 0x0406  # client-error-not-found: no such queue (RFC 8011 §13.1.4.5)
REQUESTED_ATTRIBUTES = [
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-make-and-model",
    "printer-is-accepting-jobs",
]


class CupsPrinter:
    """A CUPS queue; ``queue=None`` follows the scheduler's default destination.

    ``server`` is a host name or a Unix socket path (pycups' ``host``); ``None`` uses the
    libcups default (``CUPS_SERVER`` or ``/run/cups/cups.sock``).
    """

    def __init__(self, queue: str | None = None, *, server: str | None = None) -> None:
        self._queue = queue
        self._server = server

    @property
    def queue(self) -> str | None:
        return self._queue

    async def state(self) -> PrinterState:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._read), CUPS_TIMEOUT_S)
        except TimeoutError:
            logger.warning("CUPS did not answer within %s s", CUPS_TIMEOUT_S)
            return failed_printer(f"CUPS did not answer within {CUPS_TIMEOUT_S:g} s")

    def _read(self) -> PrinterState:
        """Blocking: runs in a worker thread."""
        try:
            import cups  # optional: only on counters with a printer
        except ImportError:
            return absent_printer("pycups not installed")
        try:
            connection = (
                cups.Connection() if self._server is None else cups.Connection(host=self._server)
            )
        except RuntimeError as exc:  # pycups' "failed to connect to server"
            logger.debug("CUPS unreachable: %s", exc)
            return absent_printer("CUPS not running")
        try:
            queue = self._queue or connection.getDefault()
            if not queue:
                return absent_printer("no default printer")
            attributes = connection.getPrinterAttributes(
                queue, requested_attributes=REQUESTED_ATTRIBUTES
            )
        except cups.IPPError as exc:
            status = exc.args[0] if exc.args else None
            if status == IPP_NOT_FOUND:
                return absent_printer(f"no such queue: {self._queue or 'default'}")
            logger.warning("CUPS error for queue %s: %s", self._queue, exc)
            return failed_printer(f"CUPS error: {short_error(exc)}")
        except (cups.HTTPError, RuntimeError) as exc:
            logger.warning("CUPS connection failed for queue %s: %s", self._queue, exc)
            return failed_printer(f"CUPS error: {short_error(exc)}")
        return state_from_attributes(attributes)
