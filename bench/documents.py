"""Scans sent to the agent: bytes per page, and time from the end of the scan to the checked
PDF at the agent, over a real WebRTC data channel on loopback.

Two aiortc peers in this process: the "agent" opens the ``documents`` channel as the browser
does; the counter's real ``DocumentSession`` answers with its flow control. The scanner
hands over synthetic pages that look scanned (A4 text on grainy paper, ``tests/support``),
so the figures are those of a dense A4 text page; SANE's test backend would give solid or
grid pictures that compress unrealistically well. Each page takes ``SCAN_S_PER_PAGE`` to
"scan"; pages are encoded while the next one scans, as on the counter.

    .venv/bin/python bench/documents.py [RUNS]
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
        self._cache: dict[tuple[int, str], ScannedPage] = {}

    def _page(self, settings: ScanSettings) -> ScannedPage:
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
            page = await asyncio.to_thread(self._page, settings)
            await asyncio.sleep(SCAN_S_PER_PAGE)  # the scan head travelling
            pages.append(page)
            on_page(page)
        self.scan_ended = time.perf_counter()
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


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RUNS))
