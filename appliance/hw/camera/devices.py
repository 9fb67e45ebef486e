"""The call's media endpoints chosen from ``[hardware]``: fresh ones for every call.

``ConfiguredMedia`` is the ``MediaDevices`` port's one adapter: it holds only the choices,
and each call gets new, unopened sources, so a camera or sound card is never held between
calls (and a webcam replugged between two calls just works).

A real microphone (``alsa``/``pulse``) goes through the call's speech processing unless
``audio_processing = "none"``: the call's microphone and loudspeaker share one
``WebrtcAudioProcessing`` (the echo canceller must hear what the loudspeaker plays). A call
asks for one of each (``CallPeer._open_media``), so the first microphone asked for is paired
with the first loudspeaker asked for, in either order.
"""

from __future__ import annotations

import logging

from appliance.config import HardwareSection
from appliance.hw.audio.processed import ProcessedMicrophone, ProcessedSpeaker
from appliance.hw.audio.pyav import NullAudioSink, PyavAudioSink, PyavAudioSource, ToneSource
from appliance.hw.audio.routed import RoutedSpeaker
from appliance.hw.audio.webrtc import WebrtcAudioProcessing, load
from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from appliance.hw.camera.pi_camera import Picamera2Source
from appliance.hw.camera.v4l2 import V4l2Format, V4l2Source
from appliance.hw.ports import AudioSink, AudioSource, FrameSource
from appliance.hw.ports.headset import AudioRouting
from guichet.contract import AudioRoute

logger = logging.getLogger(__name__)


class SilenceSource(ToneSource):
    """No microphone: a 0 Hz "tone" (silence), so the call still has an audio track."""

    def __init__(self) -> None:
        super().__init__(frequency_hz=0)


class ConfiguredMedia:
    def __init__(self, hw: HardwareSection, routing: AudioRouting | None = None) -> None:
        self._hw = hw
        self._routing = routing  # private listening: a headset takes the call's audio
        # One call's processing, made by whichever of microphone()/speaker() came first.
        self._for_speaker: WebrtcAudioProcessing | None = None
        self._for_microphone: WebrtcAudioProcessing | None = None
        self._processing = hw.audio_processing == "webrtc" and hw.audio_in in ("alsa", "pulse")
        if self._processing and (reason := load()) is not None:
            # The call goes on with the raw microphone; the agent may hear an echo.
            logger.error("speech processing unavailable, microphone sent raw: %s", reason)
            self._processing = False

    def camera(self) -> FrameSource:
        hw = self._hw
        size = (hw.camera_size[0], hw.camera_size[1])
        if hw.camera == "picamera2":
            return Picamera2Source(encoding=hw.camera_encoding, size=size, fps=hw.camera_fps)
        if hw.camera == "v4l2":
            input_format: V4l2Format = "h264" if hw.camera_encoding == "h264" else "mjpeg"
            return V4l2Source(
                hw.camera_device, input_format=input_format, size=size, fps=hw.camera_fps
            )
        if hw.camera_encoding == "h264":
            return H264TestPatternSource(size, hw.camera_fps)
        # "none" still sends the test pattern: the agent sees that the counter has no camera.
        return TestPatternSource(size, hw.camera_fps)

    def _sink(self, route: AudioRoute, headset_device: str | None) -> AudioSink:
        """The speakers, or (``HEADSET``) the headset's ALSA device."""
        hw = self._hw
        if hw.audio_out not in ("alsa", "pulse"):
            return NullAudioSink()
        if route is AudioRoute.HEADSET and headset_device is not None:
            return PyavAudioSink("alsa", headset_device)
        return PyavAudioSink(hw.audio_out, hw.audio_out_device)

    def microphone(self) -> AudioSource:
        hw = self._hw
        if hw.audio_in in ("alsa", "pulse"):
            source = PyavAudioSource(hw.audio_in, hw.audio_in_device)
            if not self._processes():
                return source
            processing, self._for_microphone = self._for_microphone, None
            if processing is None:
                processing = self._for_speaker = WebrtcAudioProcessing()
            return ProcessedMicrophone(source, processing)
        if hw.audio_in == "test_tone":
            return ToneSource()
        return SilenceSource()

    def speaker(self) -> AudioSink:
        sink: AudioSink = (
            self._sink(AudioRoute.SPEAKERS, None)
            if self._routing is None
            else RoutedSpeaker(self._routing, self._sink)
        )
        if not self._processes():
            return sink
        processing, self._for_speaker = self._for_speaker, None
        if processing is None:
            processing = self._for_microphone = WebrtcAudioProcessing()
        return ProcessedSpeaker(sink, processing)

    def _processes(self) -> bool:
        """Speech processing is for a real microphone (the test tone stays a pure tone)."""
        return self._processing
