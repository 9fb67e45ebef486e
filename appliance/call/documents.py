"""Remote documents over the call's data channel (``guichet/documents.py``): the counter's side.

One ``DocumentSession`` per call, fed by the ``documents`` channel the agent's browser opens.
It scans for the agent (SANE, through the ``DocumentScanner`` port) and sends one PDF back;
it receives the agent's PDF, checks it in memory, prints it (``DocumentPrinter``, CUPS) and
reports the job live. The citizen is told on screen what to do (``hint``).

Documents live in memory, and a PDF to print in the call's private directory for the time
CUPS needs it; ``close()`` (call end) wipes both. Nothing about a document is logged beyond
sizes and page counts. Blocking work (encoding, PDF checks, files) runs in threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from appliance.documents import pdf
from appliance.documents.storage import CallDirectory
from appliance.errors import DocumentError
from appliance.hw.ports import (
    DocumentPrinter,
    DocumentScanner,
    Printer,
    PrintJobStatus,
    ScannedPage,
    Scanner,
    ScanSettings,
)
from appliance.hw.ports.printer_status import can_print, french_reason
from guichet import documents as doc
from guichet.contract import DeviceHealth
from guichet.logs import call_id_var

logger = logging.getLogger(__name__)

ROOM_AFTER_S = 1.5  # after the last chunk is queued, the PDF still crosses the line this long
JOB_POLL_S = 0.5  # CUPS answers a job query in ~1 ms; a page takes seconds to print

HINT_FLATBED = "Posez votre document face vers la vitre du scanner, en haut à gauche."
HINT_ADF = "Posez vos feuilles dans le chargeur du scanner, face écrite vers le haut."
HINT_SCANNING = "Numérisation en cours : ne bougez pas le document."
HINT_SCANNED = "C'est fait : vous pouvez reprendre votre document."
HINT_PRINTING = "Impression en cours : vos pages sortent de l'imprimante, sous l'écran."
HINT_PRINTED = "Vos pages sont prêtes : prenez-les dans le bac de l'imprimante."
NO_REMOTE_SCAN = "Ce guichet n'a pas de scanner utilisable à distance."
NO_REMOTE_PRINT = "Ce guichet n'a pas d'imprimante utilisable à distance."


class Channel(Protocol):
    """What the session needs of a data channel (``AiortcChannel`` wraps aiortc's)."""

    def send(self, data: str | bytes) -> None: ...
    async def writable(self) -> None:
        """Return once the channel's send buffer is below the high-water mark."""
        ...


@dataclass(frozen=True)
class DocumentSettings:
    scanner: Scanner
    printer: Printer
    limits: pdf.Limits
    private_dir: Path
    job_timeout_s: float = 300.0


@dataclass
class _Incoming:
    announced: doc.PrintStart
    data: bytearray
    refused: bool = False


def _no_room(active: bool) -> None:
    """No video to step down (tests, a session without a call's peer)."""


class DocumentSession:
    def __init__(
        self,
        channel: Channel,
        settings: DocumentSettings,
        hint: Callable[[str | None], None],
        *,
        call_id: str | None = None,
        make_room: Callable[[bool], None] | None = None,
    ) -> None:
        self._call_id = call_id  # tags the log lines of the session's tasks
        self._make_room = make_room or _no_room
        self._channel = channel
        self._settings = settings
        self._hint = hint
        self._directory = CallDirectory(settings.private_dir)
        self._incoming: _Incoming | None = None
        self._scanning = False
        self._printing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._names = itertools.count(1)

    # --- inputs ---------------------------------------------------------------------------

    def opened(self) -> None:
        self._start(self.send_device_state())

    def received(self, data: str | bytes) -> None:
        if self._closed:
            return
        if isinstance(data, bytes):
            self._chunk(data)
            return
        try:
            message = doc.parse_from_browser(data)
        except doc.DocumentError as exc:
            logger.warning("bad documents message: %s", exc)
            self._send(doc.Error(code="bad_message", message="Message incompris du guichet."))
            return
        if isinstance(message, doc.ScanPrepare):
            self._hint(HINT_ADF if message.source == "adf" else HINT_FLATBED)
        elif isinstance(message, doc.ScanRequest):
            self._scan_request(message)
        elif isinstance(message, doc.PrintStart):
            self._print_start(message)
        else:
            self._print_done(message)

    async def close(self) -> None:
        """The call is over: stop everything and wipe every trace of a document."""
        self._closed = True
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            incoming.data[:] = b""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await asyncio.to_thread(self._directory.wipe)

    # --- device state ---------------------------------------------------------------------

    async def send_device_state(self) -> None:
        settings = self._settings
        scanner_state = await settings.scanner.state()
        printer_state = await settings.printer.state()
        if not isinstance(settings.scanner, DocumentScanner):
            scanner = doc.DeviceAvailability(available=False, reason=NO_REMOTE_SCAN)
        elif scanner_state.health is not DeviceHealth.OK:
            reason = "Aucun scanner n'est branché au guichet."
            scanner = doc.DeviceAvailability(available=False, reason=reason)
        else:
            feeder = await settings.scanner.has_feeder()
            scanner = doc.DeviceAvailability(available=True, adf=feeder)
        if not isinstance(settings.printer, DocumentPrinter):
            printer = doc.DeviceAvailability(available=False, reason=NO_REMOTE_PRINT)
        elif not can_print(printer_state):
            printer = doc.DeviceAvailability(available=False, reason=french_reason(printer_state))
        else:
            printer = doc.DeviceAvailability(available=True)
        self._send(doc.DeviceState(scanner=scanner, printer=printer))

    # --- scanning -------------------------------------------------------------------------

    def _scan_request(self, request: doc.ScanRequest) -> None:
        scanner = self._settings.scanner
        if not isinstance(scanner, DocumentScanner):
            self._refuse(request.id, DocumentError("scanner_unavailable", NO_REMOTE_SCAN))
        elif self._scanning:
            self._refuse(request.id, DocumentError("busy", "Une numérisation est déjà en cours."))
        else:
            self._scanning = True
            self._start(self._scan(scanner, request))

    async def _scan(self, scanner: DocumentScanner, request: doc.ScanRequest) -> None:
        """Scan; each page is encoded as soon as it is scanned (while the feeder runs),
        so only the last page's encoding and the transfer follow the end of the scan."""
        settings = ScanSettings(request.resolution, request.mode, request.source)
        scanned: asyncio.Queue[ScannedPage | None] = asyncio.Queue()
        pages_seen = 0

        def page_done(page: ScannedPage) -> None:
            nonlocal pages_seen
            pages_seen += 1
            self._send(doc.Progress(id=request.id, stage="scanning", done=pages_seen))
            scanned.put_nowait(page)

        encoder = asyncio.create_task(self._encode_pages(request.id, scanned))
        # The video steps down as the scan starts, not when it ends: by the time the PDF is
        # ready, the camera has switched rungs (at a keyframe) and the line's queue has drained.
        self._make_room(True)
        try:
            self._hint(HINT_SCANNING)
            self._send(doc.Progress(id=request.id, stage="scanning", done=0))
            try:
                await scanner.scan(settings, page_done)
            finally:
                scanned.put_nowait(None)
            end_of_scan = asyncio.get_running_loop().time()
            self._send(doc.Progress(id=request.id, stage="assembling", done=0, total=pages_seen))
            data = await asyncio.to_thread(pdf.assemble, await encoder)
            self._hint(HINT_SCANNED)
            name = f"numerisation-{next(self._names)}.pdf"
            sha = doc.sha256_hex(data)
            self._send(
                doc.ScanResult(
                    id=request.id, name=name, size=len(data), sha256=sha, pages=pages_seen
                )
            )
            await self._send_file(request.id, data, sha)
            elapsed = asyncio.get_running_loop().time() - end_of_scan
            logger.info("scan sent: %d pages, %d bytes, %.2f s", pages_seen, len(data), elapsed)
        except DocumentError as exc:
            self._hint(None)
            self._refuse(request.id, exc)
        finally:
            encoder.cancel()
            self._scanning = False
            # The last chunks are still in SCTP's queue and on the line for a moment.
            asyncio.get_running_loop().call_later(ROOM_AFTER_S, self._make_room, False)

    async def _encode_pages(
        self, transfer_id: str, scanned: asyncio.Queue[ScannedPage | None]
    ) -> list[bytes]:
        encoded: list[bytes] = []
        while (page := await scanned.get()) is not None:
            image = await asyncio.to_thread(pdf.encode_page, page)
            thumbnail = await asyncio.to_thread(pdf.thumbnail, page)
            encoded.append(image)
            self._send(
                doc.ScanPage(
                    id=transfer_id,
                    page=len(encoded),
                    width_px=page.width,
                    height_px=page.height,
                    bytes=len(image),
                    thumbnail=thumbnail,
                )
            )
        return encoded

    async def _send_file(self, transfer_id: str, data: bytes, sha: str) -> None:
        total, sent, reported = len(data), 0, 0
        for piece in doc.chunks(data):
            await self._channel.writable()
            try:
                self._channel.send(bytes(piece))
            except Exception as exc:  # the channel closed under us: the call is ending
                logger.info("scan not delivered: channel closed (%s)", type(exc).__name__)
                return
            sent += len(piece)
            if sent - reported >= doc.PROGRESS_EVERY_BYTES or sent == total:
                reported = sent
                self._send(doc.Progress(id=transfer_id, stage="sending", done=sent, total=total))
        self._send(doc.Done(id=transfer_id, sha256=sha))

    # --- printing -------------------------------------------------------------------------

    def _print_start(self, start: doc.PrintStart) -> None:
        if not isinstance(self._settings.printer, DocumentPrinter):
            self._refuse(start.id, DocumentError("printer_unavailable", NO_REMOTE_PRINT))
            return
        incoming = self._incoming
        if (incoming is not None and not incoming.refused) or self._printing:
            self._refuse(start.id, DocumentError("busy", "Une impression est déjà en cours."))
            return
        try:
            pdf.check_announced_size(start.size, self._settings.limits)
        except DocumentError as exc:
            self._refuse(start.id, exc)
            self._incoming = _Incoming(start, bytearray(), refused=True)  # drop what follows
            return
        self._incoming = _Incoming(start, bytearray())

    def _chunk(self, data: bytes) -> None:
        incoming = self._incoming
        if incoming is None or incoming.refused:
            return  # the rest of a refused transfer
        incoming.data += data
        received, start = len(incoming.data), incoming.announced
        if received > start.size or received > self._settings.limits.max_bytes:
            incoming.data[:] = b""
            incoming.refused = True
            limit = self._settings.limits.max_bytes
            self._refuse(
                start.id,
                DocumentError(
                    "too_large",
                    f"Le fichier dépasse la taille annoncée ou la limite de "
                    f"{pdf.megabytes(limit)} : envoi interrompu.",
                ),
            )
        elif received // doc.PROGRESS_EVERY_BYTES != (received - len(data)) // (
            doc.PROGRESS_EVERY_BYTES
        ):
            self._send(
                doc.Progress(id=start.id, stage="receiving", done=received, total=start.size)
            )

    def _print_done(self, done: doc.Done) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is None or incoming.announced.id != done.id:
            return
        if incoming.refused:
            return
        data = bytes(incoming.data)
        incoming.data[:] = b""
        if len(data) != incoming.announced.size or doc.sha256_hex(data) != done.sha256:
            message = "Le fichier est arrivé incomplet ou altéré : renvoyez-le."
            self._refuse(done.id, DocumentError("checksum", message))
            return
        self._printing = True
        self._start(self._print(done.id, data))

    async def _print(self, transfer_id: str, data: bytes) -> None:
        printer = self._settings.printer
        assert isinstance(printer, DocumentPrinter)
        path: Path | None = None
        try:
            self._send(doc.Progress(id=transfer_id, stage="checking", done=len(data)))
            checked = await asyncio.to_thread(pdf.check_pdf, data, self._settings.limits)
            path = await asyncio.to_thread(self._directory.new_file, data)
            del data
            job_id = await printer.submit(str(path), f"guichet-{transfer_id}")
            await asyncio.to_thread(self._directory.remove, path)  # CUPS has its copy now
            path = None
            logger.info("print job %s: %d pages", job_id, checked.pages)
            await self._follow(printer, transfer_id, job_id, checked.pages)
        except DocumentError as exc:
            self._refuse(transfer_id, exc)
        finally:
            self._printing = False
            if path is not None:
                await asyncio.to_thread(self._directory.remove, path)

    async def _follow(
        self, printer: DocumentPrinter, transfer_id: str, job_id: int, pages: int
    ) -> None:
        last: tuple[str, str | None] | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.job_timeout_s
        try:
            while True:
                status = await printer.job_status(job_id)
                if loop.time() > deadline and status.state in ("queued", "printing"):
                    status = PrintJobStatus("failed", "L'imprimante n'a pas fini à temps.")
                if (status.state, status.reason) != last:
                    last = (status.state, status.reason)
                    self._send(
                        doc.JobState(
                            id=transfer_id, state=status.state, reason=status.reason, pages=pages
                        )
                    )
                    self._hint(
                        HINT_PRINTED
                        if status.state == "done"
                        else HINT_PRINTING
                        if status.state != "failed"
                        else None
                    )
                if status.state == "done":
                    return
                if status.state == "failed":
                    logger.warning("print job %s failed", job_id)
                    await printer.cancel(job_id)  # a stopped queue must not print it later
                    self._start(self.send_device_state())
                    return
                await asyncio.sleep(JOB_POLL_S)
        except asyncio.CancelledError:
            await asyncio.shield(printer.cancel(job_id))  # the call ended mid-job
            raise

    # --- helpers --------------------------------------------------------------------------

    def _refuse(self, transfer_id: str | None, exc: DocumentError) -> None:
        logger.warning("document refused: %s", exc.code)
        self._send(doc.Error(id=transfer_id, code=exc.code, message=exc.message))

    def _send(self, message: doc.CounterToBrowser) -> None:
        if self._closed:
            return
        try:
            self._channel.send(doc.dump(message))
        except Exception as exc:  # aiortc raises InvalidStateError once the channel closed
            logger.debug("documents channel closed: %s", exc)

    def _start(self, coro: Coroutine[object, object, None]) -> None:
        context = contextvars.copy_context()
        context.run(call_id_var.set, self._call_id)
        task = asyncio.create_task(coro, name="call:documents", context=context)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("documents task failed", exc_info=exc)
