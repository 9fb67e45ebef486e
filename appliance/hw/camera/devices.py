"""The call's media endpoints chosen from ``[hardware]``: fresh ones for every call.

``ConfiguredMedia`` is the ``MediaDevices`` port's one adapter: it holds only the choices,
and each call gets new, unopened sources, so a camera or sound card is never held between
calls (and a webcam replugged between two calls just works).
"""

from __future__ import annotations

from appliance.config import HardwareSection
from appliance.hw.audio.pyav import NullAudioSink, PyavAudioSink, PyavAudioSource, ToneSource
from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from appliance.hw.camera.pi_camera import Picamera2Source
from appliance.hw.camera.v4l2 import V4l2Format, V4l2Source
from appliance.hw.ports import AudioSink, AudioSource, FrameSource


class SilenceSource(ToneSource):
    """No microphone: a 0 Hz "tone" (silence), so the call still has an audio track."""

    def __init__(self) -> None:
        super().__init__(frequency_hz=0)


class ConfiguredMedia:
    def __init__(self, hw: HardwareSection) -> None:
        self._hw = hw

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

    def microphone(self) -> AudioSource:
        hw = self._hw
        if hw.audio_in in ("alsa", "pulse"):
            return PyavAudioSource(hw.audio_in, hw.audio_in_device)
        if hw.audio_in == "test_tone":
            return ToneSource()
        return SilenceSource()

    def speaker(self) -> AudioSink:
        hw = self._hw
        if hw.audio_out in ("alsa", "pulse"):
            return PyavAudioSink(hw.audio_out, hw.audio_out_device)
        return NullAudioSink()
