"""The counter's aiortc peer against a second, real aiortc peer over loopback (the LAN
address: aioice does not gather 127.0.0.1 unless ``appliance.call.loopback`` says so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc.codecs.h264 import H264Encoder

from appliance.call.adaptation import VideoLimits
from appliance.call.peer import CallPeer
from appliance.hw.camera.pattern import H264TestPatternSource
from tests.appliance.call_support import AgentPeer, RecordingScreen, TestMedia

pytestmark = pytest.mark.slow


class Counter:
    def __init__(self, media: TestMedia, *, adaptation: VideoLimits | None = None) -> None:
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
