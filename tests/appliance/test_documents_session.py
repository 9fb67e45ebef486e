"""The counter's documents session against a real CUPS scheduler (cups-pdf) and SANE's test
backend, over an in-memory channel: every message it sends is parsed with the contract.

Covers: a 3-page PDF printed to cups-pdf (3 pages out), job state live, a stopped queue
and a disabled one reported with their reason, each bad input refused in French, a scan
delivered as one checked PDF, and the call's private directory left empty.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pikepdf
import pytest

from appliance.call.documents import DocumentSession, DocumentSettings
from appliance.documents.pdf import MB, Limits
from appliance.hw.absent import AbsentPrinter, AbsentScanner
from appliance.hw.cups.printer import CupsPrinter
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from appliance.hw.sane.scanner import SaneScanner
from guichet import documents as doc
from tests.support.cups import (
    FAULT_MESSAGE,
    CupsQueues,
    break_queue,
    cups_queues_fixture,  # noqa: F401  # the session fixture
    cups_scheduler_fixture,  # noqa: F401  # the session fixture
    repair_queue,
)
from tests.support.documents import pdf_of
from tests.support.sane import (
    NO_FAULT,
    fault,
    sane_test_backend_fixture,  # noqa: F401  # the session fixture
)

WAIT_S = 20.0


class MemoryChannel:
    """The session's channel, in memory: what it sends, parsed; chunks kept apart."""

    def __init__(self) -> None:
        self.messages: list[doc.CounterToBrowser] = []
        self.chunks: list[bytes] = []
        self.changed = asyncio.Event()

    def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.messages.append(doc.parse_to_browser(data))
        else:
            self.chunks.append(data)
        self.changed.set()

    async def writable(self) -> None:
        await asyncio.sleep(0)

    def of(self, kind: type[doc._Msg]) -> list[doc.CounterToBrowser]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def wait(self, kind: type[doc._Msg], count: int = 1) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.of(kind)) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_job_end(self) -> doc.JobState:
        async with asyncio.timeout(WAIT_S):
            while True:
                for m in self.of(doc.JobState):
                    assert isinstance(m, doc.JobState)
                    if m.state in ("done", "failed"):
                        return m
                self.changed.clear()
                await self.changed.wait()


class Rig:
    def __init__(self, session: DocumentSession, channel: MemoryChannel, hints: list[str | None]):
        self.session, self.channel, self.hints = session, channel, hints

    def send_pdf(self, transfer_id: str, data: bytes, *, announce: int | None = None) -> None:
        sha = doc.sha256_hex(data)
        size = len(data) if announce is None else announce
        start = doc.PrintStart(id=transfer_id, name="attestation.pdf", size=size, sha256=sha)
        self.session.received(doc.dump(start))
        for piece in doc.chunks(data):
            self.session.received(bytes(piece))
        self.session.received(doc.dump(doc.Done(id=transfer_id, sha256=sha)))

    def errors(self) -> list[doc.Error]:
        return [m for m in self.channel.messages if isinstance(m, doc.Error)]


async def _rig(
    tmp_path: Path,
    printer: object,
    scanner: object,
    make_room: Callable[[bool], None] | None = None,
) -> AsyncIterator[Rig]:
    channel = MemoryChannel()
    hints: list[str | None] = []
    settings = DocumentSettings(
        scanner=scanner,  # type: ignore[arg-type]
        printer=printer,  # type: ignore[arg-type]
        limits=Limits(max_bytes=20 * MB, max_pages=50),
        private_dir=tmp_path / "private",
        job_timeout_s=WAIT_S,
    )
    session = DocumentSession(channel, settings, hints.append, make_room=make_room)
    try:
        yield Rig(session, channel, hints)
    finally:
        await session.close()


def _printer(queue: str, queues: CupsQueues) -> CupsPrinter:
    return CupsPrinter(queue, server=queues.server)


@pytest.fixture
async def cups_rig(tmp_path: Path, cups_queues: CupsQueues) -> AsyncIterator[Rig]:
    async for rig in _rig(tmp_path, _printer(cups_queues.pdf, cups_queues), SimulatedScanner()):
        yield rig


def _private_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "private").rglob("*") if p.is_file()]


def _cups_pdf_outputs(queues: CupsQueues, transfer_id: str, since: float) -> list[Path]:
    out = queues.scheduler.pdf_output
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if transfer_id in p.name and p.stat().st_mtime >= since]


async def test_a_three_page_pdf_comes_out_of_cups_pdf(
    cups_rig: Rig, cups_queues: CupsQueues, tmp_path: Path
) -> None:
    since = time.time() - 1
    cups_rig.send_pdf("print3", pdf_of(3))
    end = await cups_rig.channel.wait_job_end()
    assert end.state == "done", end.reason
    states = [m.state for m in cups_rig.channel.of(doc.JobState)]  # type: ignore[union-attr]
    assert states[0] in ("queued", "printing")
    assert end.pages == 3
    async with asyncio.timeout(WAIT_S):
        while not (outputs := _cups_pdf_outputs(cups_queues, "print3", since)):
            await asyncio.sleep(0.05)
    with pikepdf.open(outputs[0]) as printed:
        assert len(printed.pages) == 3
    for output in outputs:  # the printed "paper": taken away
        output.unlink()
    assert _private_files(tmp_path) == []  # the file CUPS read is gone at once
    assert not [
        p for p in cups_queues.scheduler.spool.glob("d*") if p.stat().st_mtime >= since
    ]  # no job file kept
    assert cups_rig.hints[-1] is not None
    assert "prenez-les" in cups_rig.hints[-1]


async def test_a_stopped_queue_is_reported_with_its_reason(
    tmp_path: Path, cups_queues: CupsQueues
) -> None:
    await break_queue(cups_queues, tmp_path / "fault.txt")
    try:
        async for rig in _rig(
            tmp_path, _printer(cups_queues.failing, cups_queues), SimulatedScanner()
        ):
            await rig.session.send_device_state()
            state = rig.channel.of(doc.DeviceState)[-1]
            assert isinstance(state, doc.DeviceState)
            assert not state.printer.available
            assert state.printer.reason is not None
            assert "arrêtée" in state.printer.reason
            assert FAULT_MESSAGE in state.printer.reason
            rig.send_pdf("off", pdf_of(1))
            await rig.channel.wait(doc.Error)
            error = rig.errors()[-1]
            assert (error.id, error.code) == ("off", "printer_unavailable")
            assert "arrêtée" in error.message
    finally:
        await repair_queue(cups_queues, cups_queues.failing)


async def test_a_printer_failing_mid_job_is_reported_live(
    tmp_path: Path, cups_queues: CupsQueues
) -> None:
    try:
        async for rig in _rig(
            tmp_path, _printer(cups_queues.failing, cups_queues), SimulatedScanner()
        ):
            rig.send_pdf("midjob", pdf_of(1))
            end = await rig.channel.wait_job_end()
            assert end.state == "failed"
            assert end.reason is not None
            assert FAULT_MESSAGE in end.reason
    finally:
        await repair_queue(cups_queues, cups_queues.failing)


async def test_a_disabled_queue_is_refused_with_its_reason(
    cups_rig: Rig, cups_queues: CupsQueues
) -> None:
    connection = cups_queues.connection()
    await asyncio.to_thread(connection.disablePrinter, cups_queues.pdf, reason="maintenance")
    try:
        cups_rig.send_pdf("disabled", pdf_of(1))
        await cups_rig.channel.wait(doc.Error)
        error = cups_rig.errors()[-1]
        assert error.code == "printer_unavailable"
        assert "arrêtée" in error.message
    finally:
        await asyncio.to_thread(connection.enablePrinter, cups_queues.pdf)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GIF89a" + b"\0" * 5000, "not_pdf"),
        (pdf_of(1, encrypt=True), "encrypted"),
        (pdf_of(5000), "too_many_pages"),
    ],
    ids=["not-a-pdf", "encrypted", "5000-pages"],
)
async def test_bad_pdfs_are_refused_and_the_session_goes_on(
    tmp_path: Path, data: bytes, code: str
) -> None:
    async for rig in _rig(tmp_path, SimulatedPrinter(), SimulatedScanner()):
        rig.send_pdf("bad", data)
        await rig.channel.wait(doc.Error)
        assert rig.errors()[-1].code == code
        assert _private_files(tmp_path) == []


async def test_an_oversized_announcement_is_refused_before_any_byte(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, SimulatedPrinter(), SimulatedScanner()):
        sha = "0" * 64
        start = doc.PrintStart(id="huge", name="x.pdf", size=200 * MB, sha256=sha)
        rig.session.received(doc.dump(start))
        assert [(e.id, e.code) for e in rig.errors()] == [("huge", "too_large")]
        assert "200 Mo" in rig.errors()[0].message
        rig.session.received(b"x" * doc.CHUNK_BYTES)  # the browser had started already
        assert len(rig.errors()) == 1
        rig.send_pdf("next", pdf_of(1))  # the browser gave up on it and moved on
        assert (await rig.channel.wait_job_end()).state == "done"
        assert len(rig.errors()) == 1


async def test_more_bytes_than_announced_are_cut_off(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, SimulatedPrinter(), SimulatedScanner()):
        data = pdf_of(2)
        rig.send_pdf("liar", data + b"%" * 40_000, announce=len(data))
        assert [(e.id, e.code) for e in rig.errors()] == [("liar", "too_large")]


async def test_a_corrupted_transfer_fails_its_checksum(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, SimulatedPrinter(), SimulatedScanner()):
        data = pdf_of(1)
        start = doc.PrintStart(id="bits", name="x.pdf", size=len(data), sha256="1" * 64)
        rig.session.received(doc.dump(start))
        rig.session.received(data[:-1] + b"!")
        rig.session.received(doc.dump(doc.Done(id="bits", sha256="1" * 64)))
        assert [e.code for e in rig.errors()] == ["checksum"]


async def test_a_counter_without_remote_devices_says_so(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, AbsentPrinter(), AbsentScanner()):
        await rig.session.send_device_state()
        state = rig.channel.of(doc.DeviceState)[-1]
        assert isinstance(state, doc.DeviceState)
        assert (state.printer.available, state.scanner.available) == (False, False)
        rig.send_pdf("none", pdf_of(1))
        rig.session.received(doc.dump(doc.ScanRequest(id="none2")))
        assert [e.code for e in rig.errors()] == ["printer_unavailable", "scanner_unavailable"]


async def test_the_simulated_devices_scan_and_print(tmp_path: Path) -> None:
    printer, scanner = SimulatedPrinter(), SimulatedScanner()
    async for rig in _rig(tmp_path, printer, scanner):
        rig.session.received(doc.dump(doc.ScanRequest(id="sim", source="adf", resolution=150)))
        await rig.channel.wait(doc.Done)
        assert len(rig.channel.of(doc.ScanPage)) == 3
        rig.send_pdf("simprint", pdf_of(2))
        assert (await rig.channel.wait_job_end()).state == "done"
        assert printer.jobs == ["guichet-simprint"]
        printer.stop("out of paper")
        scanner.fault = "Scanner cover is open"
        rig.session.received(doc.dump(doc.ScanRequest(id="cover")))
        rig.send_pdf("stopped", pdf_of(1))
        await rig.channel.wait(doc.Error, 2)
        assert sorted(e.code for e in rig.errors()) == ["printer_unavailable", "scanner_cover_open"]


async def test_the_video_leaves_room_while_a_scan_crosses_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the start of the scan until the PDF has crossed, the call's video steps down."""
    from appliance.call import documents

    monkeypatch.setattr(documents, "ROOM_AFTER_S", 0.05)
    room: list[tuple[bool, int, int]] = []  # (asked, pages and Done messages sent by then)
    rig_box: list[Rig] = []

    def make_room(active: bool) -> None:
        channel = rig_box[0].channel
        room.append((active, len(channel.of(doc.ScanPage)), len(channel.of(doc.Done))))

    async for rig in _rig(tmp_path, SimulatedPrinter(), SimulatedScanner(), make_room):
        rig_box.append(rig)
        rig.session.received(doc.dump(doc.ScanRequest(id="room", resolution=150)))
        await rig.channel.wait(doc.Done)
        async with asyncio.timeout(WAIT_S):
            while len(room) < 2:
                await asyncio.sleep(0.01)
    # down before the first page is scanned, back once the PDF is sent
    assert room == [(True, 0, 0), (False, 1, 1)]


async def test_a_scan_arrives_as_one_checked_pdf(tmp_path: Path, sane_test_backend: str) -> None:
    scanner = SaneScanner(sane_test_backend)
    async for rig in _rig(tmp_path, SimulatedPrinter(), scanner):
        await rig.session.send_device_state()
        state = rig.channel.of(doc.DeviceState)[-1]
        assert isinstance(state, doc.DeviceState)
        assert state.scanner.available
        assert state.scanner.adf
        request = doc.ScanRequest(id="scan1", resolution=300, mode="gray", source="flatbed")
        rig.session.received(doc.dump(request))
        await rig.channel.wait(doc.Done)
        result = rig.channel.of(doc.ScanResult)[0]
        done = rig.channel.of(doc.Done)[0]
        pages = rig.channel.of(doc.ScanPage)
        assert isinstance(result, doc.ScanResult)
        assert isinstance(done, doc.Done)
        data = b"".join(rig.channel.chunks)
        assert len(data) == result.size
        assert doc.sha256_hex(data) == done.sha256 == result.sha256
        assert all(len(c) <= doc.CHUNK_BYTES for c in rig.channel.chunks)
        with pikepdf.open(io.BytesIO(data)) as scanned:
            assert len(scanned.pages) == 1
        assert [(p.width_px, p.height_px) for p in pages] == [(2362, 2362)]  # type: ignore[union-attr]
        assert rig.hints[0] is not None
        assert "ne bougez pas" in rig.hints[0]
        assert rig.channel.of(doc.Error) == []


async def test_a_jammed_scanner_is_reported_and_the_session_goes_on(
    tmp_path: Path, sane_test_backend: str
) -> None:
    scanner = SaneScanner(sane_test_backend)
    scanner.extra_options = fault("SANE_STATUS_JAMMED")
    async for rig in _rig(tmp_path, SimulatedPrinter(), scanner):
        rig.session.received(doc.dump(doc.ScanRequest(id="jam", source="adf")))
        await rig.channel.wait(doc.Error)
        assert rig.errors()[-1].code == "scanner_jammed"
        scanner.extra_options = NO_FAULT
        rig.session.received(doc.dump(doc.ScanRequest(id="again", resolution=150)))
        await rig.channel.wait(doc.Done)


async def test_closing_wipes_the_call_directory(tmp_path: Path) -> None:
    from appliance.documents.storage import CallDirectory, wipe_all

    directory = CallDirectory(tmp_path / "private")
    path = directory.new_file(b"%PDF-1.7 secret")
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    directory.wipe()
    assert not path.parent.exists()
    leftover = CallDirectory(tmp_path / "private")
    leftover.new_file(b"%PDF-1.7 from a crash")
    assert wipe_all(tmp_path / "private") == 1
    assert list((tmp_path / "private").iterdir()) == []
