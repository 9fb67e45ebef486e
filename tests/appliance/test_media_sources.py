"""The media sources on their own: pacing, timestamps, keyframes, and device errors."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from appliance.errors import HardwareError
from appliance.hw.audio.pyav import PyavAudioSource, ToneSource
from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from appliance.hw.camera.pi_camera import board_has_h264_encoder
from appliance.hw.camera.v4l2 import V4l2Source
from appliance.hw.pacing import VIDEO_TIME_BASE


async def test_test_pattern_is_paced_in_real_time() -> None:
    source = TestPatternSource((320, 240), 30)
    await source.open()
    try:
        frames = [await source.read() for _ in range(10)]
    finally:
        await source.close()
    assert all(isinstance(f, av.VideoFrame) for f in frames)
    assert frames[0].time_base == VIDEO_TIME_BASE
    assert frames[-1].pts == 9 * 3000  # 30 fps on a 90 kHz clock: paced, not as fast as read
    assert frames[0].format.name == "yuv420p"


async def test_h264_clip_honours_keyframe_requests() -> None:
    source = H264TestPatternSource((320, 240), 30, clip_s=2.0)
    await source.open()
    try:
        assert source.encoded
        first = await source.read()
        assert first.is_keyframe or bytes(first)[4] & 0x1F == 7  # starts with SPS + IDR
        await source.read()
        source.request_keyframe()
        packet = await source.read()
        nal_types = {b & 0x1F for b in bytes(packet).split(b"\x00\x00\x01")[1:] for b in b[:1]}
        assert 5 in nal_types  # an IDR picture came next
        assert source.keyframe_requests == 1
    finally:
        await source.close()


async def test_tone_is_48k_20ms() -> None:
    source = ToneSource()
    await source.open()
    try:
        a, b = await source.read(), await source.read()
    finally:
        await source.close()
    assert (a.sample_rate, a.samples) == (48_000, 960)
    assert b.pts == 960


async def test_missing_webcam_is_a_hardware_error(tmp_path: Path) -> None:
    source = V4l2Source(str(tmp_path / "video9"))
    with pytest.raises(HardwareError, match="camera"):
        await source.open()
    await source.close()


async def test_missing_sound_card_is_a_hardware_error() -> None:
    source = PyavAudioSource("alsa", "hw:99,0")
    with pytest.raises(HardwareError, match="microphone"):
        await source.open()
    await source.close()


def test_pi_model_decides_the_encoder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 4 Model B Rev 1.4\x00")
    assert board_has_h264_encoder(model)
    model.write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    assert not board_has_h264_encoder(model)
    assert not board_has_h264_encoder(tmp_path / "absent")
