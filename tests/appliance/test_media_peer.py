"""The counter's aiortc peer against a second, real aiortc peer over loopback (the LAN
address: aioice does not gather 127.0.0.1 unless ``appliance.call.loopback`` says so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioice import Connection
from aiortc import AudioStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH

from appliance.call.adaptation import VideoLimits
from appliance.call.peer import CallPeer
from appliance.call.sctp import INITIAL_WINDOW_BYTES
from appliance.call.start_rate import START_KBPS
from appliance.errors import ApplianceError, HardwareError
from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from tests.appliance.call_support import AgentPeer, RecordingScreen, TestMedia

pytestmark = pytest.mark.slow


class WatchedCamera(TestPatternSource):
    def __init__(self, size: tuple[int, int], fps: int) -> None:
        super().__init__(size, fps)
        self.opened = self.closed = False

    async def open(self) -> None:
        await super().open()
        self.opened = True

    async def close(self) -> None:
        await super().close()
        self.closed = True


class BrokenCamera(TestPatternSource):
    async def open(self) -> None:
        raise HardwareError("caméra absente")


class Counter:
    def __init__(
        self,
        media: TestMedia,
        *,
        adaptation: VideoLimits | None = None,
        on_channel: Callable[[RTCDataChannel], None] | None = None,
    ) -> None:
        self.media = media
        self.screen = RecordingScreen()
        self.connected = 0
        self.lost = 0
        self.peer = CallPeer(
            media,
            screen=self.screen,
            ice_servers=[],
            on_connected=self._connected,
            on_lost=self._lost,
            on_channel=on_channel,
            adaptation=adaptation,
        )

    def _connected(self) -> None:
        self.connected += 1

    def _lost(self) -> None:
        self.lost += 1


@pytest.fixture
async def agent() -> AsyncIterator[AgentPeer]:
    peer = AgentPeer()
    yield peer
    await peer.close()


async def connect(agent: AgentPeer, counter: Counter) -> None:
    await agent.accept(await counter.peer.answer(await agent.offer()))


async def test_test_pattern_frames_arrive_both_ways(agent: AgentPeer) -> None:
    counter = Counter(TestMedia())
    try:
        await connect(agent, counter)
        await agent.wait_frames(10)
        async with asyncio.timeout(20):
            await counter.screen.frame_seen.wait()
            await counter.media.speakers[0].played.wait()
        assert counter.connected == 1
    finally:
        await counter.peer.close()
    assert not counter.media.speakers[0].is_open
    assert counter.media.cameras[0]._input._frames is None  # type: ignore[attr-defined]


async def test_renegotiation_keeps_the_connection(agent: AgentPeer) -> None:
    counter = Counter(TestMedia())
    try:
        await connect(agent, counter)
        await agent.wait_frames(5)
        await connect(agent, counter)  # same ICE credentials: a renegotiation
        await agent.wait_frames(5)
        assert counter.peer.connections == 1
    finally:
        await counter.peer.close()


async def test_ice_restart_offer_gets_a_new_connection_with_the_same_camera(
    agent: AgentPeer,
) -> None:
    counter = Counter(TestMedia())
    second = AgentPeer()  # new ICE credentials, like the browser's restartIce()
    try:
        await connect(agent, counter)
        await agent.wait_frames(5)
        await connect(second, counter)
        await second.wait_frames(5)
        assert counter.peer.connections == 2
        assert len(counter.media.cameras) == 1
    finally:
        await counter.peer.close()
        await second.close()


async def test_a_prepared_connection_answers_the_first_offer_without_gathering_again(
    agent: AgentPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prepare()`` (the agent has answered) opens the media and gathers the candidates
    before the offer exists; the answer then carries them and gathers nothing more."""
    gathered: list[object] = []
    original = Connection.gather_candidates

    async def counting(connection: Connection) -> None:
        gathered.append(connection)
        await original(connection)

    monkeypatch.setattr(Connection, "gather_candidates", counting)
    offer = await agent.offer()  # made first: what is gathered from now on is the counter's
    gathered.clear()
    counter = Counter(TestMedia(camera_factory=WatchedCamera))
    try:
        await counter.peer.prepare()
        camera = counter.media.cameras[0]
        assert isinstance(camera, WatchedCamera)
        assert camera.opened
        async with asyncio.timeout(10):
            while not gathered:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert len(gathered) == 2  # audio's and video's, until the offer bundles them
        answer = await counter.peer.answer(offer)
        assert "a=candidate:" in answer
        await agent.accept(answer)
        await agent.wait_frames(5)
        assert len(gathered) == 2
        assert counter.peer.connections == 1
    finally:
        await counter.peer.close()
    assert camera.closed


async def test_a_prepared_connection_that_does_not_fit_the_offer_is_replaced() -> None:
    """An offer without video (not the console's) gets a connection made for it."""
    counter = Counter(TestMedia())
    voice_only = RTCPeerConnection()
    voice_only.addTrack(AudioStreamTrack())
    try:
        await counter.peer.prepare()
        await voice_only.setLocalDescription(await voice_only.createOffer())
        answer = await counter.peer.answer(voice_only.localDescription.sdp)
        await voice_only.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert counter.peer.connections == 2
        async with asyncio.timeout(20):
            await counter.media.speakers[0].played.wait()  # the voice crossed
    finally:
        await counter.peer.close()
        await voice_only.close()


async def test_a_camera_that_fails_while_preparing_refuses_the_offer(agent: AgentPeer) -> None:
    counter = Counter(TestMedia(camera_factory=BrokenCamera))
    try:
        await counter.peer.prepare()  # does not raise: the offer is answered with the error
        with pytest.raises(ApplianceError, match="caméra absente"):
            await counter.peer.answer(await agent.offer())
    finally:
        await counter.peer.close()


async def test_h264_passthrough_is_never_re_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"encode": 0, "pack": 0}
    original_encode, original_pack = H264Encoder.encode, H264Encoder.pack

    def counting_encode(self: H264Encoder, *args: Any, **kwargs: Any) -> Any:
        calls["encode"] += 1
        return original_encode(self, *args, **kwargs)

    def counting_pack(self: H264Encoder, *args: Any, **kwargs: Any) -> Any:
        calls["pack"] += 1
        return original_pack(self, *args, **kwargs)

    monkeypatch.setattr(H264Encoder, "encode", counting_encode)
    monkeypatch.setattr(H264Encoder, "pack", counting_pack)
    agent = AgentPeer(send_video=False)
    counter = Counter(TestMedia(camera_factory=H264TestPatternSource))
    try:
        await connect(agent, counter)
        await agent.wait_frames(30)  # decoded by the agent peer's H.264 decoder
        assert agent.receiver_codec() == "video/H264"
        assert calls["pack"] >= 30
        assert calls["encode"] == 0
    finally:
        await counter.peer.close()
        await agent.close()


async def test_keyframe_request_reaches_the_passthrough_source(agent: AgentPeer) -> None:
    counter = Counter(TestMedia(camera_factory=H264TestPatternSource))
    try:
        await connect(agent, counter)
        await agent.wait_frames(5)
        source = counter.media.cameras[0]
        assert isinstance(source, H264TestPatternSource)
        before = source.keyframe_requests
        source.keyframe_requested.clear()
        receiver = next(t.receiver for t in agent.pc.getTransceivers() if t.kind == "video")
        media_ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams))
        await receiver._send_rtcp_pli(media_ssrc)  # a real RTCP PLI, over the network
        async with asyncio.timeout(10):
            await source.keyframe_requested.wait()
        assert source.keyframe_requests > before
    finally:
        await counter.peer.close()


async def test_the_receivers_remb_reaches_the_climber_and_the_camera_follows_it(
    agent: AgentPeer,
) -> None:
    counter = Counter(
        TestMedia(camera_factory=H264TestPatternSource), adaptation=VideoLimits((640, 360), 30)
    )
    rungs: list[str] = []
    counter.peer.rung_listeners.append(lambda rung: rungs.append(rung.name))
    try:
        await connect(agent, counter)
        climber = counter.peer.climber
        source = counter.media.cameras[0]
        assert climber is not None
        assert isinstance(source, H264TestPatternSource)
        assert source.rung == climber.rung  # it opened at the climber's first rung
        await agent.wait_frames(10)
        async with asyncio.timeout(20):  # aiortc's receiver sends REMB about once a second
            while climber.last_remb_bps is None:
                await asyncio.sleep(0.05)
        before = climber.rung  # the start rung, or one up if the loopback left room
        climber.loss(0.9)  # as a receiver report losing most packets would say
        assert climber.rung.bitrate_bps < before.bitrate_bps
        async with asyncio.timeout(20):
            while source.rung != climber.rung:
                await asyncio.sleep(0.05)
        assert rungs[-1] == climber.rung.name
        await agent.wait_frames(10)  # pictures go on at the lower rung
    finally:
        await counter.peer.close()


async def test_the_documents_association_starts_with_the_browsers_window(
    agent: AgentPeer,
) -> None:
    """aiortc's SCTP starts at 3 packets; the counter's starts at the browser's 10
    (``appliance.call.sctp``). This pins the private window it sets: if aiortc renames it,
    this fails instead of scans silently slowing down on rural lines."""
    channels: list[RTCDataChannel] = []
    counter = Counter(TestMedia(), on_channel=channels.append)
    opened = asyncio.Event()
    documents = agent.pc.createDataChannel("documents")
    documents.on("open", opened.set)
    try:
        await connect(agent, counter)
        async with asyncio.timeout(20):
            await opened.wait()
            while not channels:
                await asyncio.sleep(0.01)
        pc = counter.peer._pc
        assert pc is not None
        assert pc.sctp is not None
        sctp = pc.sctp
        assert sctp._cwnd >= INITIAL_WINDOW_BYTES > 3 * USERDATA_MAX_LENGTH
    finally:
        await counter.peer.close()


async def test_only_the_first_answer_gives_the_browser_a_start_bitrate(agent: AgentPeer) -> None:
    counter = Counter(TestMedia())
    try:
        first = await counter.peer.answer(await agent.offer())
        await agent.accept(first)
        await agent.wait_frames(5)
        again = await counter.peer.answer(await agent.offer())  # a renegotiation
        await agent.accept(again)
        await agent.wait_frames(5)
    finally:
        await counter.peer.close()
    assert f"x-google-start-bitrate={START_KBPS}" in first
    assert "x-google-start-bitrate" not in again
