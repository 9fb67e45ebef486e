"""Scans sent to the agent: bytes per page, and time from the end of the scan to the checked
PDF at the agent, over a real WebRTC data channel — on loopback, or during a call on a
shaped rural line.

**Loopback** (the default). Two aiortc peers in this process: the "agent" opens the
``documents`` channel as the browser does; the counter's real ``DocumentSession`` answers with
its flow control. The scanner hands over synthetic pages that look scanned (A4 text on grainy
paper, ``tests/support``), so the figures are those of a dense A4 text page; SANE's test
backend would give solid or grid pictures that compress unrealistically well. Each page takes
``SCAN_S_PER_PAGE`` to "scan"; pages are encoded while the next one scans, as on the counter.

    .venv/bin/python bench/documents.py [RUNS]

**Shaped** (``--shaped adsl``; issue 19: a grey A4 300 dpi page at the agent ≤ 3 s after the
scan ends, the video going on). The real Chromium agent console ↔ the real counter behind the
shaped line (``call_rig(network=…)``, ``docs/rural-network.md``), its camera the pre-encoded
H.264 test pattern up to 720p30 with the video adaptation on, as on a real counter. The
counter's scanner is this bench's ``TextPageScanner`` (``call_rig(scanner=…)``, in place of the
simulated scanner's blank pages), the page drawn before the first call. The bench re-executes
itself under ``unshare --net`` (root needed), as ``bench/rural_call.py`` does. Per run:

- a new call: press, "Répondre", frames at the agent, the documents channel open; the video
  settles ``SETTLE_S``; the agent picks 300 ppp, Gris, Vitre and clicks "Numériser";
- *end of scan → PDF at agent*: from the scanner's ``scan()`` returning on the counter
  (``time.time()`` in its thread) to the console listing the PDF in
  ``window.guichetAgent.documents.state.scans`` (``Date.now()`` in the page, polled every
  ``POLL_MS``; the console lists it only once its SHA-256 and size match the counter's). The
  browser and the bench share the machine's wall clock. The PDF is then downloaded through
  the console's link and opened with pikepdf: one page, the scan's pixel size;
- the agent's received video (``tests/support/call_metrics.py``): frames presented per second
  and the frozen share (> 500 ms without a frame, the gap clipped to the window) during the
  transfer (end of scan → PDF at agent), ±``AROUND_S`` around it, before the click
  (``BEFORE_S``) and after the PDF (``AFTER_S``); the video's kbit/s received before and during;
- the rungs the counter's video took from the click to ``AFTER_S`` after the PDF
  (``peer.rung_listeners``).

It prints each run, then the median and maximum of each column ("on wire": from the
console's receiving the PDF's announcement to its check, the console's own count; the rest of
"scan→PDF" is the counter encoding and assembling the page). No goal is asserted.

    .venv/bin/python bench/documents.py --shaped adsl [RUNS] [--settle S] [--log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiortc import RTCDataChannel, RTCPeerConnection  # noqa: E402

from appliance.call.channel import AiortcChannel  # noqa: E402
from appliance.call.documents import DocumentSession, DocumentSettings  # noqa: E402
from appliance.call.loopback import enable_loopback_candidates  # noqa: E402
from appliance.documents.pdf import Limits  # noqa: E402
from appliance.hw.ports import ScannedPage, ScanSettings  # noqa: E402
from appliance.hw.ports.printer import SimulatedPrinter  # noqa: E402
from appliance.hw.ports.scanner import SimulatedScanner  # noqa: E402
from guichet import documents as doc  # noqa: E402
from tests.support.documents import scanned_text_page  # noqa: E402

DEFAULT_RUNS = 5
SCAN_S_PER_PAGE = 1.0  # a slow USB scanner: a grey A4 page at 300 dpi takes 1-4 s
CASES = [  # (label, resolution, mode, source)
    ("A4 grey 300 dpi, 1 page", 300, "gray", "flatbed"),
    ("A4 grey 300 dpi, 5 pages (feeder)", 300, "gray", "adf"),
    ("A4 black & white 300 dpi, 1 page", 300, "lineart", "flatbed"),
    ("A4 colour 150 dpi, 1 page", 150, "color", "flatbed"),
    ("A4 grey 150 dpi, 1 page", 150, "gray", "flatbed"),
]


class TextPageScanner(SimulatedScanner):
    """Dense A4 text pages, as a scanner would give them; notes when scanning ended."""

    def __init__(self) -> None:
        super().__init__()
        self.scan_ended = 0.0
        self.scan_ended_at = 0.0
        self._cache: dict[tuple[int, str], ScannedPage] = {}

    def page(self, settings: ScanSettings) -> ScannedPage:
        """The page at these settings, drawn once (seconds of CPU at 300 dpi)."""
        from PIL import Image

        key = (settings.resolution, settings.mode)
        if key not in self._cache:
            width, height, pixels = scanned_text_page(settings.resolution)
            grey = Image.frombytes("L", (width, height), pixels)
            mode = {"gray": "L", "color": "RGB", "lineart": "1"}[settings.mode]
            image = grey.point(lambda v: 255 if v > 160 else 0) if mode == "1" else grey
            image = image.convert(mode)
            self._cache[key] = ScannedPage(
                width, height, mode, settings.resolution, image.tobytes()
            )
        return self._cache[key]

    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        pages = []
        for _ in range(5 if settings.source == "adf" else 1):
            page = await asyncio.to_thread(self.page, settings)
            await asyncio.sleep(SCAN_S_PER_PAGE)  # the scan head travelling
            pages.append(page)
            on_page(page)
        self.scan_ended = time.perf_counter()
        self.scan_ended_at = time.time()  # the wall clock: the browser reads the same
        return pages


class Agent:
    """The browser's side of the channel: collects one scan and checks it."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.parts: list[bytes] = []
        self.result: doc.ScanResult | None = None
        self.page_bytes: list[int] = []
        self.done = asyncio.Event()
        self.received_at = 0.0
        channel.on("message", self.on_message)

    def reset(self) -> None:
        self.parts, self.result, self.page_bytes = [], None, []
        self.done.clear()

    def on_message(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.parts.append(data)
            return
        message = doc.parse_to_browser(data)
        if isinstance(message, doc.ScanPage):
            self.page_bytes.append(message.bytes)
        elif isinstance(message, doc.ScanResult):
            self.result = message
        elif isinstance(message, doc.Done):
            pdf = b"".join(self.parts)
            assert self.result is not None
            assert doc.sha256_hex(pdf) == message.sha256
            assert len(pdf) == self.result.size
            self.received_at = time.perf_counter()
            self.done.set()
        elif isinstance(message, doc.Error):
            raise RuntimeError(message.message)


async def connect() -> tuple[RTCPeerConnection, RTCPeerConnection, Agent, list[Any]]:
    enable_loopback_candidates()
    agent_pc, counter_pc = RTCPeerConnection(), RTCPeerConnection()
    channel = agent_pc.createDataChannel(doc.CHANNEL_LABEL, ordered=True)
    agent = Agent(channel)
    counter_channels: list[Any] = []
    opened = asyncio.Event()
    counter_pc.on("datachannel", lambda ch: (counter_channels.append(ch), opened.set()))
    await agent_pc.setLocalDescription(await agent_pc.createOffer())
    await counter_pc.setRemoteDescription(agent_pc.localDescription)
    await counter_pc.setLocalDescription(await counter_pc.createAnswer())
    await agent_pc.setRemoteDescription(counter_pc.localDescription)
    await asyncio.wait_for(opened.wait(), 20)
    return agent_pc, counter_pc, agent, counter_channels


async def main(runs: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    agent_pc, counter_pc, agent, channels = await connect()
    scanner = TextPageScanner()
    with tempfile.TemporaryDirectory() as private:
        settings = DocumentSettings(scanner, SimulatedPrinter(), Limits(), Path(private))
        session = DocumentSession(AiortcChannel(channels[0]), settings, lambda hint: None)
        channels[0].on("message", session.received)
        print(f"{'case':38} {'KB/page':>8} {'PDF KB':>7} {'end of scan → PDF at agent':>27}")
        for label, resolution, mode, source in CASES:
            times = []
            for run in range(runs):
                agent.reset()
                request = doc.ScanRequest(
                    id=f"r{run}", resolution=resolution, mode=mode, source=source
                )
                agent.channel.send(doc.dump(request))
                await asyncio.wait_for(agent.done.wait(), 120)
                times.append(agent.received_at - scanner.scan_ended)
            assert agent.result is not None
            per_page = statistics.mean(agent.page_bytes) / 1024
            median, worst = statistics.median(times), max(times)
            print(
                f"{label:38} {per_page:8.0f} {agent.result.size / 1024:7.0f}"
                f"   median {median:5.2f} s, max {worst:5.2f} s"
            )
        await session.close()
    await agent_pc.close()
    await counter_pc.close()


# --- the shaped run: a call on a rural line, the real console ------------------------------

SHAPED_RUNS = 3
CAMERA = (1280, 720)  # at 30 frames/s: the top of the ladder is 720p30, as in rural_call.py
GREY_300 = ScanSettings(300, "gray", "flatbed")
CALL_WAIT_S = 60.0  # connecting through a lossy line with 120 ms of round trip
SETTLE_S = 20.0  # from its first rung (360p20) the video climbs to what the line holds (360p30)
BEFORE_S = 5.0  # the video before the click, the reference
AROUND_S = 3.0  # the transfer's neighbourhood: a freeze just before or after counts too
AFTER_S = 5.0  # the video after the PDF: back at its rung?
POLL_MS = 10  # the console's state, read this often for the PDF's arrival
TRANSFER_WAIT_MS = 120_000

PDF_ARRIVED_JS = """
(before) => {
  const scans = window.guichetAgent.documents.state.scans;
  if (scans.length <= before) { return false; }
  const s = scans[scans.length - 1];
  return {at: Date.now() / 1000, size: s.size, sha256: s.sha256, wire: s.seconds};
}
"""


@dataclass
class ShapedRun:
    pdf_kb: float
    to_agent_s: float  # end of scan → checked PDF at the agent
    wire_s: float  # of which the PDF's bytes on the channel (the console's own count)
    frozen_transfer: float  # share of the window
    frozen_around: float
    fps_before: float
    fps_transfer: float
    fps_after: float
    video_kbps_before: float
    video_kbps_transfer: float
    rungs: list[str]


def frozen_in(frames: Sequence[float], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` inside gaps longer than ``FREEZE_S`` between frames; a gap
    that began before ``start`` or ends after ``end`` counts for its part inside."""
    from tests.support.call_metrics import FREEZE_S

    times = sorted(frames)
    edges = [max([t for t in times if t <= start], default=start)]
    edges += [t for t in times if start < t < end]
    edges.append(min([t for t in times if t >= end], default=end))
    frozen = 0.0
    for a, b in itertools.pairwise(edges):
        if b - a > FREEZE_S:
            frozen += max(0.0, min(b, end) - max(a, start))
    return frozen


def fps(frames: Sequence[float], start: float, end: float) -> float:
    return sum(1 for t in frames if start <= t < end) / (end - start)


def video_kbps(samples: Sequence[dict[str, Any]], start: float, end: float) -> float:
    """The video's bytes received between the samples nearest ``start`` and ``end``."""
    inside = [s for s in samples if start - 0.1 <= s["t"] <= end + 0.1]
    if len(inside) < 2 or inside[-1]["t"] <= inside[0]["t"]:
        return float("nan")
    octets = inside[-1]["videoBytes"] - inside[0]["videoBytes"]
    return octets * 8 / 1000 / (inside[-1]["t"] - inside[0]["t"])


def check_pdf(data: bytes, page: ScannedPage) -> None:
    """One page whose image has the scan's pixel size."""
    import io

    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) == 1, len(pdf.pages)
        images = [
            x for x in pdf.pages[0].Resources.XObject.values() if x.Subtype == pikepdf.Name.Image
        ]
        sizes = [(int(i.Width), int(i.Height)) for i in images]
        assert sizes == [(page.width, page.height)], sizes


async def start_call(rig: Any) -> None:
    """Press, answer, frames at the agent, the documents channel open with its scanner."""
    from appliance.call.machine import Phase
    from tests.support.call_harness import wait_for

    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued", CALL_WAIT_S)
    await rig.answer()
    await rig.wait_browser_frames(15, timeout_s=CALL_WAIT_S)
    await rig.page.wait_for_function(
        "() => { const d = window.guichetAgent.documents;"
        " return d && d.state.open && d.state.device && d.state.device.scanner.available; }",
        timeout=CALL_WAIT_S * 1000,
    )


async def shaped_run(rig: Any, scanner: TextPageScanner, settle_s: float) -> ShapedRun:
    from tests.support import call_metrics as cm

    await cm.take(rig.page)  # forget the previous call's frames
    await start_call(rig)
    rungs: list[tuple[float, str]] = []
    peer = rig.agent.peer
    if peer is not None and peer.climber is not None:
        rungs.append((time.time(), peer.climber.rung.name))
        peer.rung_listeners.append(lambda r: rungs.append((time.time(), r.name)))
    await asyncio.sleep(settle_s)
    page = rig.page
    await page.select_option("#scan-resolution", "300")
    await page.select_option("#scan-mode", "gray")
    await page.select_option("#scan-source", "flatbed")
    before = await page.evaluate("() => window.guichetAgent.documents.state.scans.length")
    clicked = time.time()
    await page.get_by_role("button", name="Numériser").click()
    arrived = await page.wait_for_function(
        PDF_ARRIVED_JS, arg=before, polling=POLL_MS, timeout=TRANSFER_WAIT_MS
    )
    pdf = await arrived.json_value()
    async with page.expect_download() as download_info:  # the console's own link
        await page.locator("#scan-link").click()
    download = await download_info.value
    data = await asyncio.to_thread(Path(await download.path()).read_bytes)
    await download.delete()
    assert len(data) == pdf["size"]
    assert doc.sha256_hex(data) == pdf["sha256"]
    check_pdf(data, await asyncio.to_thread(scanner.page, GREY_300))
    await asyncio.sleep(max(0.0, pdf["at"] + AFTER_S - time.time()))
    frames, samples = await cm.take(page)
    await page.get_by_role("button", name="Raccrocher").click()
    await rig.wait_idle()
    ended, at = scanner.scan_ended_at, pdf["at"]
    current = [name for t, name in rungs if t <= clicked][-1:]
    return ShapedRun(
        pdf_kb=pdf["size"] / 1024,
        to_agent_s=at - ended,
        wire_s=pdf["wire"],
        frozen_transfer=frozen_in(frames, ended, at) / (at - ended),
        frozen_around=frozen_in(frames, ended - AROUND_S, at + AROUND_S)
        / (at - ended + 2 * AROUND_S),
        fps_before=fps(frames, clicked - BEFORE_S, clicked),
        fps_transfer=fps(frames, ended, at),
        fps_after=fps(frames, at, at + AFTER_S),
        video_kbps_before=video_kbps(samples, clicked - BEFORE_S, clicked),
        video_kbps_transfer=video_kbps(samples, ended, at),
        rungs=current + [name for t, name in rungs if clicked < t <= at + AFTER_S],
    )


SHAPED_COLUMNS = (  # (header, width, format, the run's figure)
    ("PDF KB", 7, "{:7.0f}", lambda r: r.pdf_kb),
    ("scan→PDF", 9, "{:7.2f} s", lambda r: r.to_agent_s),
    ("on wire", 9, "{:7.2f} s", lambda r: r.wire_s),
    ("frozen xfer", 11, "{:11.1%}", lambda r: r.frozen_transfer),
    (f"±{AROUND_S:.0f} s", 7, "{:7.1%}", lambda r: r.frozen_around),
    ("fps before", 10, "{:10.1f}", lambda r: r.fps_before),
    ("xfer", 5, "{:5.1f}", lambda r: r.fps_transfer),
    ("after", 5, "{:5.1f}", lambda r: r.fps_after),
    ("kbit/s before", 13, "{:13.0f}", lambda r: r.video_kbps_before),
    ("xfer", 5, "{:5.0f}", lambda r: r.video_kbps_transfer),
)


def shaped_report(profile: str, runs: list[ShapedRun]) -> None:
    headers = " ".join(f"{h:>{w}}" for h, w, _, _ in SHAPED_COLUMNS)
    print(f"\n== {profile}\n{'run':7} {headers}  rungs (click → PDF + {AFTER_S:.0f} s)")
    for index, r in enumerate(runs, 1):
        cells = " ".join(f.format(get(r)) for _, _, f, get in SHAPED_COLUMNS)
        print(f"{index:<7} {cells}  {' → '.join(r.rungs)}")
    for name, pick in (("median", statistics.median), ("max", max)):
        cells = " ".join(f.format(pick([get(r) for r in runs])) for _, _, f, get in SHAPED_COLUMNS)
        print(f"{name:7} {cells}")


async def shaped_main(profile: str, runs: int, settle_s: float) -> None:
    from tests.support import call_metrics as cm
    from tests.support.call_harness import call_rig

    logging.basicConfig(level=logging.WARNING)
    scanner = TextPageScanner()
    await asyncio.to_thread(scanner.page, GREY_300)  # drawn now, not in the first call
    print(
        f"{runs} call(s) on {profile}: Chromium agent ↔ counter (H.264 test pattern up to "
        f"720p30, adaptation on); A4 grey 300 dpi, 1 page, scanned {SCAN_S_PER_PAGE:.0f} s "
        f"after the click; video settled {settle_s:.0f} s first; 'xfer' = end of scan → PDF"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        async with call_rig(
            Path(tmp),
            camera_encoding="h264",
            camera_size=CAMERA,
            network=profile,
            scanner=scanner,
        ) as rig:
            await cm.install(rig.page)
            for _ in range(runs):
                results.append(await shaped_run(rig, scanner, settle_s))
    shaped_report(profile, results)


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("runs", nargs="?", type=int, help="runs per case (loopback: 5, shaped: 3)")
    parser.add_argument("--shaped", metavar="PROFILE", help="a call on this line (adsl…)")
    parser.add_argument(
        "--settle", type=float, default=SETTLE_S, help="shaped: seconds of video first"
    )
    parser.add_argument("--log", help="shaped: the climber's and the documents' log to this file")
    args = parser.parse_args()
    if args.shaped is None:
        asyncio.run(main(args.runs or DEFAULT_RUNS))
        return 0
    from tests.support.own_netns import inside, run_again_inside

    if not inside():
        return run_again_inside()
    if args.log:
        handler = logging.FileHandler(args.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        for name, level in (
            ("appliance.call.adaptation", "DEBUG"),
            ("appliance.call.documents", "INFO"),
        ):
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.addHandler(handler)
            logger.propagate = False  # to the file only
    asyncio.run(shaped_main(args.shaped, args.runs or SHAPED_RUNS, args.settle))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
