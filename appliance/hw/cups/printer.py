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
from typing import Any, Literal

from appliance.errors import DocumentError
from appliance.hw._bridge import short_error
from appliance.hw.ports import PrintJobStatus
from appliance.hw.ports.printer_status import (
    absent_printer,
    can_print,
    failed_printer,
    french_reason,
    state_from_attributes,
)
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
# IPP job-state (RFC 8011 §5.3.7) → the documents contract's job states.
JOB_STATES: dict[int, Literal["queued", "printing", "failed"]] = {
    3: "queued",
    4: "queued",
    5: "printing",
    6: "printing",
    7: "failed",
    8: "failed",
}
IPP_JOB_COMPLETED = 9
# With ``PreserveJobHistory No`` (counters keep no history) a finished job is forgotten at
# once: "not found" then means it ended; the printer's state tells how.
JOB_GONE = 0
JOB_ATTRIBUTES = ["job-state", "job-state-reasons", "job-printer-state-message"]


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

    @property
    def server(self) -> str | None:
        return self._server

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
            connection = self._connect(cups)
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

    def _connect(self, cups: Any) -> Any:
        """Blocking. pycups' ``host`` may be a Unix socket path: it works across network
        namespaces, where the scheduler's TCP port may not be reachable."""
        return cups.Connection() if self._server is None else cups.Connection(host=self._server)

    # --- printing (DocumentPrinter) ---------------------------------------------------------

    async def submit(self, path: str, title: str) -> int:
        state = await self.state()
        if not can_print(state):
            raise DocumentError("printer_unavailable", french_reason(state))
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._submit, path, title), CUPS_TIMEOUT_S
            )
        except TimeoutError:
            raise DocumentError("printer_unavailable", "CUPS ne répond pas.") from None

    def _submit(self, path: str, title: str) -> int:
        import cups

        try:
            connection = self._connect(cups)
            queue = self._queue or connection.getDefault()
            job_id: int = connection.printFile(queue, path, title, {})
        except (cups.IPPError, cups.HTTPError, RuntimeError) as exc:
            logger.warning("CUPS refused a job: %s", short_error(exc))
            raise DocumentError("print_failed", "L'imprimante a refusé le document.") from None
        return job_id

    async def job_status(self, job_id: int) -> PrintJobStatus:
        try:
            state, reasons = await asyncio.wait_for(
                asyncio.to_thread(self._job, job_id), CUPS_TIMEOUT_S
            )
        except TimeoutError:
            return PrintJobStatus("queued", "CUPS ne répond pas pour l'instant.")
        printer = await self.state()
        if state == IPP_JOB_COMPLETED or (state == JOB_GONE and can_print(printer)):
            return PrintJobStatus("done")
        if state in (7, 8, JOB_GONE):
            return PrintJobStatus("failed", _job_failure(reasons, printer))
        if not can_print(printer):  # a stopped queue holds its jobs: the agent must know
            return PrintJobStatus("failed", french_reason(printer))
        return PrintJobStatus(JOB_STATES.get(state, "queued"))

    def _job(self, job_id: int) -> tuple[int, list[str]]:
        import cups

        try:
            attributes = self._connect(cups).getJobAttributes(
                job_id, requested_attributes=JOB_ATTRIBUTES
            )
        except cups.IPPError as exc:
            if exc.args and exc.args[0] == IPP_NOT_FOUND:
                return JOB_GONE, []
            logger.warning("CUPS job %s unreadable: %s", job_id, short_error(exc))
            return 8, ["job-unreadable"]
        except (cups.HTTPError, RuntimeError) as exc:
            logger.warning("CUPS job %s unreadable: %s", job_id, short_error(exc))
            return 8, ["job-unreadable"]
        raw = attributes.get("job-state-reasons", [])
        reasons = [raw] if isinstance(raw, str) else [str(r) for r in raw]
        return int(attributes.get("job-state", 3)), reasons

    async def cancel(self, job_id: int) -> None:
        def cancel() -> None:
            import cups

            try:
                self._connect(cups).cancelJob(job_id, purge_job=True)
            except (cups.IPPError, cups.HTTPError, RuntimeError) as exc:
                logger.debug("cancelling job %s: %s", job_id, short_error(exc))

        await asyncio.wait_for(asyncio.to_thread(cancel), CUPS_TIMEOUT_S)


def _job_failure(reasons: list[str], printer: PrinterState) -> str:
    if "job-canceled-by-user" in reasons or "job-canceled-at-device" in reasons:
        return "L'impression a été annulée."
    if not can_print(printer):
        return french_reason(printer)
    return "L'impression a échoué."
