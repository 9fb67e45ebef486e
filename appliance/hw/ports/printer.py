"""The printer: health (``Printer``), printing for the agent (``DocumentPrinter``) and the
fake, a CUPS-like queue judged by the same code as the real CUPS adapter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from appliance.errors import DocumentError
from appliance.hw.ports.printer_status import (
    QueueState,
    absent_printer,
    can_print,
    french_reason,
    printer_state,
)
from guichet.contract import PrinterState


@runtime_checkable
class Printer(Protocol):
    async def state(self) -> PrinterState: ...


@dataclass(frozen=True, slots=True)
class PrintJobStatus:
    state: Literal["queued", "printing", "done", "failed"]
    reason: str | None = None  # French, for the agent: "Plus de papier", "Imprimante éteinte"…


@runtime_checkable
class DocumentPrinter(Protocol):
    """Printing for the agent. ``submit`` raises ``DocumentError`` when the queue refuses."""

    async def submit(self, path: str, title: str) -> int: ...
    async def job_status(self, job_id: int) -> PrintJobStatus: ...
    async def cancel(self, job_id: int) -> None: ...


SIMULATED_PRINTER_MODEL = "Imprimante simulée"  # shown on the counter's page: French


class SimulatedPrinter:
    """A CUPS-like queue whose state, reasons and message are set by hand."""

    def __init__(self, *, model: str = SIMULATED_PRINTER_MODEL) -> None:
        self.model = model
        self.present = True
        self.queue_state: QueueState = "idle"
        self.reasons: list[str] = []
        self.message: str | None = None
        self.jobs: list[str] = []  # titles of the jobs submitted

    def set_reasons(self, reasons: Iterable[str], message: str | None = None) -> None:
        self.reasons, self.message = list(reasons), message

    def stop(self, message: str = "printer stopped") -> None:
        """Like CUPS after a backend failure: stopped, paused, with a message."""
        self.queue_state, self.message = "stopped", message
        if "paused" not in self.reasons:
            self.reasons.append("paused")

    def resume(self) -> None:
        """Like ``cupsenable``: idle again, all reasons cleared."""
        self.queue_state, self.reasons, self.message = "idle", [], None

    async def state(self) -> PrinterState:
        if not self.present:
            return absent_printer("débranchée")
        ipp = {"idle": 3, "processing": 4, "stopped": 5}.get(self.queue_state)
        return printer_state(
            ipp_state=ipp, reasons=self.reasons, message=self.message, model=self.model
        )

    # DocumentPrinter: jobs "print" at once (titles kept; documents never read).
    async def submit(self, path: str, title: str) -> int:
        state = await self.state()
        if not can_print(state):
            raise DocumentError("printer_unavailable", french_reason(state))
        self.jobs.append(title)
        return len(self.jobs)

    async def job_status(self, job_id: int) -> PrintJobStatus:
        state = await self.state()
        if not can_print(state):
            return PrintJobStatus("failed", french_reason(state))
        return PrintJobStatus("done")

    async def cancel(self, job_id: int) -> None:
        return None
