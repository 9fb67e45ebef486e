"""Cameras moving along the video ladder: the pre-encoded test pattern switches clips at a
keyframe, raw sources scale and thin their frames, the pacer keeps time across a change of
rate, and the Pi camera adapter restarts its encoder at the rung's bitrate (against a
stand-in for picamera2's documented API: picamera2 exists only on a Pi)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import av
import pytest

from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from appliance.hw.camera.pi_camera import Picamera2Source
from appliance.hw.camera.rungs import RawRungFitter
from appliance.hw.camera.v4l2 import V4l2Source
from appliance.hw.pacing import VIDEO_TIME_BASE, Pacer
from appliance.hw.ports import VideoRung

SMALL = VideoRung("180p10", 320, 180, 10, 150_000)
MIDDLE = VideoRung("270p15", 480, 270, 15, 250_000)


def decoded_size(decoder: Any, packet: av.Packet) -> tuple[int, int] | None:
    frames = decoder.decode(packet)
    return (frames[-1].width, frames[-1].height) if frames else None


async def test_the_h264_pattern_starts_at_the_rung_chosen_before_it_opened() -> None:
    source = H264TestPatternSource((640, 360), 30, clip_s=1.0)
    source.set_rung(SMALL)
    await source.open()
    try:
        decoder = av.CodecContext.create("h264", "r")
        first = await source.read()
        assert first.is_keyframe or b"\x00\x00\x00\x01\x67" in bytes(first)  # SPS in front
        assert decoded_size(decoder, first) == (320, 180)
        second = await source.read()
        step_s = float((second.pts - first.pts) * VIDEO_TIME_BASE)
        assert step_s == pytest.approx(1 / 10, abs=0.01)  # the rung's frame rate
    finally:
        await source.close()


async def test_the_h264_pattern_switches_clips_at_a_keyframe_and_keeps_time() -> None:
    source = H264TestPatternSource((640, 360), 30, clip_s=1.0)
    await source.open()
    try:
        decoder = av.CodecContext.create("h264", "r")
        first = await source.read()
        assert decoded_size(decoder, first) == (640, 360)
        source.set_rung(MIDDLE)  # encoded in the background; the old clip goes on
        sizes: list[tuple[int, int] | None] = []
        pts: list[int] = [int(first.pts or 0)]
        async with asyncio.timeout(20):
            while (size := decoded_size(decoder, packet := await source.read())) != (480, 270):
                sizes.append(size)
                pts.append(int(packet.pts or 0))
        assert b"\x00\x00\x00\x01\x67" in bytes(packet)  # the new clip opens with its SPS
        assert source.rung == MIDDLE
        assert set(sizes) <= {(640, 360), None}  # the old clip until then
        pts.append(int(packet.pts or 0))
        assert all(a < b for a, b in itertools.pairwise(pts))  # time goes on
        source.set_rung(MIDDLE)  # already there: nothing changes
        assert decoded_size(decoder, await source.read()) == (480, 270)
    finally:
        await source.close()


async def test_raw_frames_are_scaled_and_thinned_to_the_rung() -> None:
    source = TestPatternSource((640, 360), 30)
    await source.open()
    try:
        source.set_rung(SMALL)
        frames = [await source.read() for _ in range(6)]
        assert {(f.width, f.height) for f in frames} == {(320, 180)}
        gaps = [float((b.pts - a.pts) * VIDEO_TIME_BASE) for a, b in itertools.pairwise(frames)]
        assert gaps == pytest.approx([0.1] * 5, abs=0.035)
    finally:
        await source.close()


def test_the_fitter_never_upscales_and_reanchors_after_a_stall() -> None:
    fitter = RawRungFitter((320, 180), 30)
    fitter.set_rung(VideoRung("big", 1280, 720, 30, 1))
    frame = av.VideoFrame(320, 180, "yuv420p")
    assert fitter.fit(frame) is frame
    fitter.set_rung(SMALL)
    kept = [t for t in [i / 30 for i in range(30)] if fitter.keep(t)]
    assert len(kept) == 10
    assert fitter.keep(5.0)  # the source stalled for seconds: the next frame is kept
    assert not fitter.keep(5.0 + 1 / 30)


async def test_the_pacer_keeps_stream_time_unbroken_across_a_change_of_rate() -> None:
    now = [0.0]
    pacer = Pacer(1 / 30, clock=lambda: now[0])
    times = []
    for _ in range(3):
        times.append(await pacer.tick())
        now[0] += 1 / 30
    pacer.retime(1 / 10)
    for _ in range(3):
        times.append(await pacer.tick())
        now[0] += 1 / 10
    assert times == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30, 3 / 30 + 0.1, 3 / 30 + 0.2])
    with pytest.raises(ValueError):
        pacer.retime(0)


def test_an_h264_webcam_keeps_its_own_rate_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera = V4l2Source("/dev/video-none", input_format="h264")
    with caplog.at_level(logging.INFO):
        camera.set_rung(SMALL)
        camera.set_rung(MIDDLE)
    assert [r.message for r in caplog.records].count(
        "camera /dev/video-none encodes H.264 itself: it keeps its own rate"
    ) == 1


# --- the Pi camera, against a stand-in for picamera2 ---------------------------------------


class FakePicamera2:
    """Records the calls the adapter makes, as picamera2's documentation names them."""

    instances: ClassVar[list[FakePicamera2]] = []

    def __init__(self, index: int = 0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_next_configure = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        if self.fail_next_configure:
            self.fail_next_configure = False
            raise RuntimeError("Camera in Running state trying to configure")
        self.calls.append(("configure", (config["main"]["size"], config["controls"]["FrameRate"])))

    def start_recording(self, encoder: Any, output: Any) -> None:
        self.calls.append(("start_recording", encoder.bitrate))
        output.outputframe(b"\x00\x00\x00\x01\x67picture")

    def stop_recording(self) -> None:
        self.calls.append(("stop_recording", None))

    def close(self) -> None:
        self.calls.append(("close", None))


class FakeH264Encoder:
    def __init__(self, bitrate: int, repeat: bool, iperiod: int) -> None:
        self.bitrate = bitrate


class FakeOutput:
    pass


@pytest.fixture
def picamera2() -> Iterator[type[FakePicamera2]]:
    FakePicamera2.instances = []
    modules = {
        "picamera2": types.SimpleNamespace(Picamera2=FakePicamera2),
        "picamera2.encoders": types.SimpleNamespace(H264Encoder=FakeH264Encoder),
        "picamera2.outputs": types.SimpleNamespace(Output=FakeOutput),
    }
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)  # type: ignore[arg-type]
    try:
        yield FakePicamera2
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


async def test_the_pi_camera_restarts_its_encoder_at_the_rung(
    picamera2: type[FakePicamera2],
) -> None:
    source = Picamera2Source(encoding="h264", size=(1280, 720), fps=30)
    source.set_rung(MIDDLE)  # before open: it opens at the rung
    await source.open()
    camera = picamera2.instances[0]
    assert camera.calls[:2] == [("configure", ((480, 270), 15.0)), ("start_recording", 250_000)]
    assert bytes(await source.read()).startswith(b"\x00\x00\x00\x01\x67")
    source.set_rung(SMALL)
    async with asyncio.timeout(5):
        while source.rung != SMALL:
            await asyncio.sleep(0.01)
    assert camera.calls[2:5] == [
        ("stop_recording", None),
        ("configure", ((320, 180), 10.0)),
        ("start_recording", 150_000),
    ]
    await source.close()
    assert camera.calls[-2:] == [("stop_recording", None), ("close", None)]


async def test_a_pi_camera_that_refuses_a_rung_goes_back_to_what_worked(
    picamera2: type[FakePicamera2], caplog: pytest.LogCaptureFixture
) -> None:
    source = Picamera2Source(encoding="h264", size=(1280, 720), fps=30)
    source.set_rung(MIDDLE)
    await source.open()
    camera = picamera2.instances[0]
    camera.fail_next_configure = True
    source.set_rung(SMALL)
    async with asyncio.timeout(5):
        while not any("cannot move to 180p10" in r.message for r in caplog.records):
            await asyncio.sleep(0.01)
    assert source.rung == MIDDLE
    assert camera.calls[-2:] == [("configure", ((480, 270), 15.0)), ("start_recording", 250_000)]
    await source.close()
