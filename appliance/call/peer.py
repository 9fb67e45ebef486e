"""The counter's side of the WebRTC call, on aiortc: it answers the agent's browser.

One ``CallPeer`` per call. It opens the camera, microphone and loudspeaker at the first
offer and releases them in ``close()``, whatever happened. Each offer is answered once ICE
gathering is complete (aiortc's ``setLocalDescription`` waits for it: the counter does not
trickle). The browser does (issue 16): its offer comes without candidates and each
candidate follows (``add_candidate``), then its end; aiortc's ``addIceCandidate`` hands them
to the running ICE checks (aioice pairs a candidate added while it connects, and reports a
failure only after the end of candidates). A candidate is taken under the same lock as the
offers, so it is added after the offer it came after, and only to the connection answering
the offer it names (its ``ice-ufrag``): one from before an ICE restart is dropped.

- Ready before the offer (``prepare()``, called as soon as the agent answers): while the
  agent's browser opens its camera and gathers its candidates, the counter opens its media,
  builds the connection and gathers its own candidates — on a rural line a TURN allocation
  alone is 2–3 round trips. The offer then only has to be applied and answered. (aiortc
  makes one transport per kind until the offer says they are bundled; both are gathered,
  and the one the offer's bundle leaves out is closed, freeing its relay. aiortc 1.16's
  ``max-bundle`` would make one, but drops it when the offer's first m-line is not the
  first transceiver's kind.)

- Renegotiation (same ICE credentials): answered on the same ``RTCPeerConnection``.
- ICE restart (new ``ice-ufrag`` in the offer) or a failed connection: aiortc 1.16 cannot
  restart ICE on a connection (its ICE transport starts once), so the offer is answered by
  a fresh ``RTCPeerConnection`` fed by the same, still open, media sources.
- A camera that gives H.264 (``FrameSource.encoded``) is sent without re-encoding: the
  video transceiver's codec preferences leave only H.264 packetization-mode 1 (constrained
  baseline ``42e01f`` first), so aiortc's sender packs our ``av.Packet``s instead of
  encoding frames; and keyframe requests (RTCP PLI/FIR), which aiortc only turns into a
  flag for its own encoder, are forwarded to the source (``appliance.call.feedback``).
- With ``adaptation``, what the camera sends follows the path: one ``RungClimber`` per call
  (``appliance.call.adaptation``) reads the browser's REMB, losses and round trips and moves
  the camera along its ladder; it outlives an ICE restart, as the camera does. Without it,
  the camera sends what it was built for, whatever the line (as before issue 19).
- The agent's video goes to ``Screen.show_frame`` (through aiortc's jitter buffer, guarded
  against waiting behind lost packets: ``appliance.call.jitter``); the agent's audio to the
  loudspeaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from appliance.call.adaptation import RungClimber, VideoLimits, ladder_for
from appliance.call.feedback import SenderFeedback, set_encoder_bitrate
from appliance.call.jitter import skip_holes
from appliance.call.quality import CallQualityMeter
from appliance.call.sctp import start_like_the_browser
from appliance.call.start_rate import with_start_bitrate
from appliance.call.tracks import CameraTrack, MicrophoneTrack, pump_audio, pump_video
from appliance.errors import ApplianceError
from appliance.hw.ports import (
    AudioSink,
    AudioSource,
    FrameSource,
    MediaDevices,
    Screen,
    VideoRung,
)
from guichet.signalling import IceCandidate, IceServer

logger = logging.getLogger(__name__)

PREFERRED_H264_PROFILE = "42e01f"  # constrained baseline 3.1: every browser decodes it
PREPARED_KINDS = frozenset({"audio", "video"})  # every offer of the agent's console has both
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
_MLINE = re.compile(r"^m=(\w+) ", re.MULTILINE)


class MediaNegotiationError(ApplianceError):
    """An offer that cannot be answered (no common codec, malformed SDP…)."""


def h264_preferences() -> list[RTCRtpCodecCapability]:
    """H.264 packetization-mode 1 only (preferred profile first), with RTX."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [
        c
        for c in codecs
        if c.mimeType.lower() == "video/h264" and c.parameters.get("packetization-mode") == "1"
    ]
    h264.sort(key=lambda c: c.parameters.get("profile-level-id") != PREFERRED_H264_PROFILE)
    return h264 + [c for c in codecs if c.mimeType.lower() == "video/rtx"]


def opus_preferences() -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    return [c for c in codecs if c.mimeType.lower() == "audio/opus"]


def ice_ufrag(sdp: str) -> str | None:
    match = _UFRAG.search(sdp)
    return match.group(1) if match else None


def media_kinds(sdp: str) -> set[str]:
    """The media kinds of an SDP's m-lines ("audio", "video", "application")."""
    return set(_MLINE.findall(sdp))


class CallPeer:
    def __init__(
        self,
        devices: MediaDevices,
        *,
        screen: Screen | None,
        ice_servers: list[IceServer],
        on_connected: Callable[[], None],
        on_lost: Callable[[], None],
        on_channel: Callable[[RTCDataChannel], None] | None = None,
        adaptation: VideoLimits | None = None,
    ) -> None:
        self._devices = devices
        self._adaptation = adaptation
        self._video_sender: RTCRtpSender | None = None
        self.climber: RungClimber | None = None  # this call's, once the media are open
        self.rung_listeners: list[Callable[[VideoRung], None]] = []  # benches, tests
        self._on_channel = on_channel
        self._screen = screen
        self._ice_servers = ice_servers
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._camera: FrameSource | None = None
        self._microphone: AudioSource | None = None
        self._speaker: AudioSink | None = None
        self._pc: RTCPeerConnection | None = None
        self._remote_ufrag: str | None = None
        self._answered = False  # the call's first answer carries the start bitrate, no other
        self._prepared: asyncio.Task[bool] | None = None  # early gathering of the unused pc
        self._prepare_error: ApplianceError | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._closed = False
        self.connections = 0  # peer connections made for this call (1 + ICE restarts)
        self.meter = CallQualityMeter()  # the call's quality, across ICE restarts

    @property
    def speaker(self) -> AudioSink | None:
        """Where the agent's voice goes during the call (None between calls)."""
        return self._speaker

    @property
    def camera(self) -> FrameSource | None:
        return self._camera

    async def prepare(self) -> None:
        """Open the media and build and gather the first connection before its offer comes.

        A failure is kept for ``answer()`` to report; nothing here raises."""
        async with self._lock:
            if self._closed or self._pc is not None:
                return
            try:
                await self._open_media()
                pc = self._new_connection(set(PREPARED_KINDS))
            except ApplianceError as exc:
                self._prepare_error = exc
                return
            except Exception as exc:  # a device or aiortc failing in an unforeseen way
                logger.exception("preparing the call's media failed")
                self._prepare_error = MediaNegotiationError(f"{type(exc).__name__}: {exc}")
                return
            self._prepared = asyncio.create_task(_gather(pc), name="call:gather")

    async def answer(self, offer_sdp: str) -> str:
        """Apply the browser's offer; return our complete answer (all candidates in it)."""
        async with self._lock:
            if self._closed:
                raise MediaNegotiationError("the call is over")
            if self._prepare_error is not None:
                raise self._prepare_error
            await self._open_media()
            ufrag = ice_ufrag(offer_sdp)
            pc = self._pc
            prepared, self._prepared = self._prepared, None
            if prepared is not None:  # the first offer: the connection made for it, if fit
                fits = await prepared and media_kinds(offer_sdp) >= PREPARED_KINDS
            else:  # the same ICE session: renegotiation on the same connection
                fits = ufrag == self._remote_ufrag
            if pc is None or not fits or pc.connectionState in ("failed", "closed"):
                if pc is not None:
                    why = "does not fit the offer" if prepared else "ICE restart"
                    logger.info("%s: answering with a new peer connection", why)
                    await self._retire(pc)
                pc = self._new_connection(media_kinds(offer_sdp))
            self._remote_ufrag = ufrag
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
            except (ValueError, LookupError) as exc:  # aiortc's errors derive from neither…
                raise MediaNegotiationError(str(exc)) from exc
            except Exception as exc:  # …InvalidStateError, OperationError, InternalError
                raise MediaNegotiationError(f"{type(exc).__name__}: {exc}") from exc
            sdp = str(pc.localDescription.sdp)
            if self._answered:
                return sdp
            self._answered = True
            return with_start_bitrate(sdp)

    async def add_candidate(self, ufrag: str, candidate: IceCandidate | None) -> None:
        """One of the browser's trickled candidates for its offer named by ``ufrag`` (None:
        its end of candidates). Never raises: a candidate that does not fit is logged."""
        async with self._lock:  # after any offer received before it has been applied
            pc = self._pc
            if self._closed or pc is None or ufrag != self._remote_ufrag:
                logger.info("candidate for another ICE session ignored")
                return
        try:
            ice = None if candidate is None else _ice_candidate(candidate)
        except (AssertionError, ValueError, IndexError) as exc:  # aiortc's parser
            logger.warning("unreadable ICE candidate ignored: %s", exc)
            return
        try:  # outside the lock: an mDNS name is resolved before the call returns
            await pc.addIceCandidate(ice)
        except Exception as exc:  # aiortc/aioice refusing it in an unforeseen way
            logger.warning("ICE candidate not added: %s: %s", type(exc).__name__, exc)

    def make_room(self, active: bool) -> None:
        """A document starts or stops crossing the uplink (``DocumentSession``)."""
        if self.climber is not None:
            self.climber.make_room(active)

    async def close(self) -> None:
        """Stop the media and release camera, microphone and loudspeaker; idempotent."""
        async with self._lock:
            self._closed = True
            pc, self._pc = self._pc, None
            if self._prepared is not None:
                self._prepared.cancel()
                self._prepared = None
            if pc is not None:
                await self._retire(pc)
            await self.meter.close()
            for pump in list(self._pumps):
                pump.cancel()
            if self._pumps:
                await asyncio.wait(self._pumps)
            parts: list[tuple[str, FrameSource | AudioSource | AudioSink | None]] = [
                ("camera", self._camera),
                ("microphone", self._microphone),
                ("loudspeaker", self._speaker),
            ]
            self._camera = self._microphone = self._speaker = None
            for name, part in parts:
                if part is None:
                    continue
                try:
                    await part.close()
                except Exception:
                    logger.exception("releasing the %s failed", name)

    # --- internals ----------------------------------------------------------------------

    async def _open_media(self) -> None:
        if self._camera is not None:
            return
        camera, microphone, speaker = (
            self._devices.camera(),
            self._devices.microphone(),
            self._devices.speaker(),
        )
        # Assigned before opening, so close() releases whatever did open.
        self._camera, self._microphone, self._speaker = camera, microphone, speaker
        limits = self._adaptation
        if limits is not None:
            self.climber = RungClimber(
                ladder_for(limits.size, limits.fps), on_change=self._rung_changed
            )
            camera.set_rung(self.climber.rung)  # before open: the first picture is at it
            self.meter.note_rung(self.climber.rung.name)
            logger.info("video starts at %s", self.climber.rung.name)
        await camera.open()
        await microphone.open()
        await speaker.open()

    def _new_connection(self, kinds: set[str]) -> RTCPeerConnection:
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in self._ice_servers
        ]
        # An empty list, not None: aiortc's default is Google's public STUN server, which a
        # counter must not contact (and, where it is unreachable, costs 5 s of gathering).
        configuration = RTCConfiguration(iceServers=servers)
        pc = RTCPeerConnection(configuration)
        camera, microphone = self._camera, self._microphone
        if camera is None or microphone is None:
            raise MediaNegotiationError("media not open")
        # Tracks are added before the offer is applied, so the offer's m-lines take these
        # transceivers (and the H.264 preference); only for kinds the offer has: aiortc
        # 1.16 fails to answer with a transceiver the offer did not negotiate.
        if "audio" in kinds:
            self._add_microphone(pc, MicrophoneTrack(microphone))
        if "video" in kinds:
            screen = self._screen
            preview = (lambda frame: screen.show_frame(frame, self_view=True)) if screen else None
            self._add_camera(pc, CameraTrack(camera, preview=preview), camera)

        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":  # the agent's video: never stuck behind a hole
                skip_holes(transceiver.receiver)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._start_pump(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self._on_state(pc)

        if self._on_channel is not None:  # the browser's "documents" channel
            on_channel = self._on_channel

            @pc.on("datachannel")
            def on_datachannel(channel: RTCDataChannel) -> None:
                if pc.sctp is not None:
                    start_like_the_browser(pc.sctp)
                on_channel(channel)

        self._pc = pc
        self.meter.watch(pc)
        self.connections += 1
        return pc

    @staticmethod
    def _add_microphone(pc: RTCPeerConnection, track: MicrophoneTrack) -> None:
        """Opus only: the track hands aiortc Opus packets, which no other codec could carry."""
        sender = pc.addTrack(track)
        for transceiver in pc.getTransceivers():
            if transceiver.sender is sender:
                transceiver.setCodecPreferences(opus_preferences())

    def _add_camera(self, pc: RTCPeerConnection, track: CameraTrack, camera: FrameSource) -> None:
        sender = pc.addTrack(track)
        if camera.encoded:
            for transceiver in pc.getTransceivers():
                if transceiver.sender is sender:
                    transceiver.setCodecPreferences(h264_preferences())
        SenderFeedback(sender, camera, self.climber)
        self._video_sender = sender

    def _rung_changed(self, rung: VideoRung) -> None:
        camera, sender = self._camera, self._video_sender
        if camera is None:
            return
        camera.set_rung(rung)
        if sender is not None and not camera.encoded:
            set_encoder_bitrate(sender, rung.bitrate_bps)
        self.meter.note_rung(rung.name)
        for listener in self.rung_listeners:
            listener(rung)

    def _on_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc:
            return  # a retired connection closing
        state = pc.connectionState
        logger.info("media path %s", state)
        if state == "connected":
            self._on_connected()
        elif state == "failed":
            self._on_lost()

    def _start_pump(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            screen = self._screen
            show: Callable[[av.VideoFrame], None] = screen.show_frame if screen else _discard
            shown = self.meter.shown(show)
            task = asyncio.create_task(pump_video(track, shown), name="call:agent-video")
        else:
            speaker = self._speaker
            if speaker is None:
                return
            heard = self.meter.heard(speaker.play)
            task = asyncio.create_task(pump_audio(track, heard), name="call:agent-audio")
        self._pumps.add(task)
        task.add_done_callback(self._pump_done)

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        self._pumps.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("received media stopped", exc_info=exc)

    async def _retire(self, pc: RTCPeerConnection) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may raise anything
            await pc.close()


def _ice_candidate(candidate: IceCandidate) -> RTCIceCandidate:
    """aiortc's candidate from the browser's line (``candidate:`` then RFC 8839's fields)."""
    ice = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
    ice.sdpMid, ice.sdpMLineIndex = candidate.sdp_mid, candidate.sdp_mline_index
    return ice


async def _gather(pc: RTCPeerConnection) -> bool:
    """Gather the candidates of ``pc``'s transports now; aiortc's ``setLocalDescription``
    then finds them gathered. False if gathering failed (the offer gets a new connection)."""
    gatherers = {t.sender.transport.transport.iceGatherer for t in pc.getTransceivers()}
    try:
        await asyncio.gather(*(g.gather() for g in gatherers))
    except Exception:  # aioice may raise anything from a socket or a TURN server
        logger.exception("early ICE gathering failed")
        return False
    return True


def _discard(frame: object) -> None:
    """No screen: frames are dropped."""
