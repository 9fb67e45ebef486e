"""Helpers for the call tests: an "agent" aiortc peer that offers like the browser does,
media devices built from the test sources, and a screen that records what it was told."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeVar, Unpack

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from appliance.hw.audio.pyav import NullAudioSink, ToneSource
from appliance.hw.ports import AudioSink, AudioSource, FrameSource, ScreenInfo, ScreenState
from guichet import signalling as sig

T = TypeVar("T")
SMALL = (320, 240)  # small pictures keep the loopback tests light on a 2-core machine


@dataclass
class TestMedia:
    """``MediaDevices`` for tests; remembers what it handed out."""

    __test__ = False
    camera_factory: type[FrameSource] | None = None
    cameras: list[FrameSource] = field(default_factory=list)
    speakers: list[NullAudioSink] = field(default_factory=list)
    microphones: list[ToneSource] = field(default_factory=list)

    def camera(self) -> FrameSource:
        from appliance.hw.camera.pattern import TestPatternSource

        source = (self.camera_factory or TestPatternSource)(SMALL, 15)  # type: ignore[call-arg]
        self.cameras.append(source)
        return source

    def microphone(self) -> AudioSource:
        source = ToneSource()
        self.microphones.append(source)
        return source

    def speaker(self) -> AudioSink:
        sink = NullAudioSink()
        self.speakers.append(sink)
        return sink


@dataclass
class RecordingScreen:
    states: list[tuple[ScreenState, ScreenInfo]] = field(default_factory=list)
    frames: int = 0
    self_frames: int = 0
    frame_seen: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None:
        self.states.append((state, info))
        self.changed.set()

    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None:
        if self_view:
            self.self_frames += 1
        else:
            self.frames += 1
            self.frame_seen.set()

    def close(self) -> None:
        pass

    @property
    def state(self) -> ScreenState | None:
        return self.states[-1][0] if self.states else None

    async def wait_for(self, state: ScreenState, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while self.state is not state:
                self.changed.clear()
                await self.changed.wait()


class AgentPeer:
    """What the browser does: offers with its own camera and microphone, counts frames."""

    def __init__(
        self, *, send_video: bool = True, configuration: RTCConfiguration | None = None
    ) -> None:
        self.pc = RTCPeerConnection(configuration)
        if send_video:
            self.pc.addTrack(VideoStreamTrack())
        else:  # camera off: the only video encoder in the process is the counter's
            self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTrack(AudioStreamTrack())
        self.video_frames = 0
        self.codecs: list[str] = []
        self._frames_event = asyncio.Event()
        self._target = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.blackhole = MediaBlackhole()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.append(asyncio.create_task(self._count(track)))
            else:
                self.blackhole.addTrack(track)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        await self.blackhole.start()

    async def wait_frames(self, count: int, timeout: float = 20) -> None:
        self._target = self.video_frames + count
        async with asyncio.timeout(timeout):
            while self.video_frames < self._target:
                self._frames_event.clear()
                await self._frames_event.wait()

    def receiver_codec(self) -> str:
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                return str(transceiver._codecs[0].mimeType)
        return ""

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.blackhole.stop()
        await self.pc.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.VideoFrame):
                self.video_frames += 1
                self._frames_event.set()


class FakeFleetServer:
    """A real ``websockets`` server on loopback that speaks ``guichet.signalling`` as the
    fleet server does to a counter; the test drives it message by message."""

    def __init__(self, *, token: str, ring_timeout_s: int = 60) -> None:
        self.token = token
        self.ring_timeout_s = ring_timeout_s
        self.received: asyncio.Queue[sig.CounterToServer] = asyncio.Queue()
        self.connections = 0
        self.refused = 0
        self.connected = asyncio.Event()
        self._current: ServerConnection | None = None
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/counter"

    async def start(self) -> None:
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, process_request=self._check_token
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        self._current = connection
        await connection.send(
            sig.dump(
                sig.Welcome(
                    device_id="counter-1",
                    service="caf",
                    service_label="Caf — Allocations familiales",
                    ring_timeout_s=self.ring_timeout_s,
                )
            )
        )
        self.connected.set()
        with contextlib.suppress(ConnectionClosed):
            async for raw in connection:
                await self.received.put(sig.parse_from_counter(raw))

    async def send(self, message: sig._Msg) -> None:
        assert self._current is not None
        await self._current.send(sig.dump(message))

    async def drop(self) -> None:
        """Close the counter's socket (a network cut as the server sees it)."""
        assert self._current is not None
        self.connected.clear()
        await self._current.close()

    async def expect(self, kind: type[T], timeout: float = 10) -> T:
        """The next message of type ``kind`` (others of other types are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.received.get()
                if isinstance(message, kind):
                    return message

    async def answer_call(self, call_id: uuid.UUID, agent: AgentPeer) -> None:
        """What the server and the agent's browser do together: answer, offer, accept."""
        await self.send(sig.CallAnswered(call_id=call_id, agent_label="Conseillère Caf"))
        offer = sig.SessionDescription(type="offer", sdp=await agent.offer())
        await self.send(sig.Description(call_id=call_id, description=offer))
        answer = await self.expect(sig.Description)
        await agent.accept(answer.description.sdp)
