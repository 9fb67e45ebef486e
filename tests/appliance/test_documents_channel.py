"""The documents channel on real aiortc peers: the counter's ``CallPeer`` accepts the data
channel the agent opens in its offer, and a multi-page scan crosses it, flow-controlled
(never more than the high-water mark queued), checksummed, while video keeps flowing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.call.channel import AiortcChannel
from appliance.call.documents import DocumentSession, DocumentSettings
from appliance.call.peer import CallPeer
from appliance.documents.pdf import Limits
from appliance.hw.ports import ScannedPage, ScanSettings
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from guichet import documents as doc
from tests.appliance.call_support import AgentPeer, TestMedia

pytestmark = pytest.mark.slow
WAIT_S = 30.0


class NoiseScanner(SimulatedScanner):
    """Pages of noise: incompressible, so the PDF is megabytes and fills the channel."""

    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        pages = []
        for _ in range(3):
            page = ScannedPage(1240, 1754, "RGB", 150, os.urandom(1240 * 1754 * 3))
            pages.append(page)
            on_page(page)
        return pages


class WatchedChannel(AiortcChannel):
    """Records the most ever queued in the channel when a chunk is handed over."""

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.raw = channel
        self.peak = 0

    def send(self, data: str | bytes) -> None:
        self.peak = max(self.peak, self.raw.bufferedAmount)
        super().send(data)


async def test_a_scan_crosses_the_call_s_data_channel_while_video_flows(tmp_path: Path) -> None:
    agent = AgentPeer()
    channel = agent.pc.createDataChannel(doc.CHANNEL_LABEL, ordered=True)
    received: list[bytes] = []
    messages: list[doc.CounterToBrowser] = []
    finished = asyncio.Event()

    @channel.on("message")
    def on_message(data: str | bytes) -> None:
        if isinstance(data, bytes):
            received.append(data)
            return
        message = doc.parse_to_browser(data)
        messages.append(message)
        if isinstance(message, doc.Done | doc.Error):
            finished.set()

    sessions: list[DocumentSession] = []
    watched: list[WatchedChannel] = []
    settings = DocumentSettings(NoiseScanner(), SimulatedPrinter(), Limits(), tmp_path / "private")

    def on_channel(raw: Any) -> None:
        assert raw.label == doc.CHANNEL_LABEL
        wrapped = WatchedChannel(raw)
        session = DocumentSession(wrapped, settings, lambda hint: None)
        raw.on("message", session.received)
        watched.append(wrapped)
        sessions.append(session)
        if raw.readyState == "open":
            session.opened()
        else:
            raw.on("open", session.opened)

    peer = CallPeer(
        TestMedia(),
        screen=None,
        ice_servers=[],
        on_connected=lambda: None,
        on_lost=lambda: None,
        on_channel=on_channel,
    )
    try:
        answer = await peer.answer(await agent.offer())
        assert "m=application" in answer
        await agent.accept(answer)
        async with asyncio.timeout(WAIT_S):
            while channel.readyState != "open" or not any(
                isinstance(m, doc.DeviceState) for m in messages
            ):
                await asyncio.sleep(0.02)
        await agent.wait_frames(5)
        request = doc.ScanRequest(id="adf", resolution=150, mode="color", source="adf")
        channel.send(doc.dump(request))
        frames_before = agent.video_frames
        await asyncio.wait_for(finished.wait(), WAIT_S)
        result = next(m for m in messages if isinstance(m, doc.ScanResult))
        done = next(m for m in messages if isinstance(m, doc.Done))
        data = b"".join(received)
        assert len(data) == result.size
        assert doc.sha256_hex(data) == done.sha256
        assert result.pages == 3
        assert len(data) > 2 * doc.HIGH_WATER_BYTES  # the sender had to wait…
        assert doc.LOW_WATER_BYTES < watched[0].peak <= doc.HIGH_WATER_BYTES + doc.CHUNK_BYTES
        assert any(isinstance(m, doc.Progress) and m.stage == "sending" for m in messages)
        await agent.wait_frames(5)  # the video did not stop for the document
        assert agent.video_frames > frames_before
    finally:
        for session in sessions:
            await session.close()
        await peer.close()
        await agent.close()
