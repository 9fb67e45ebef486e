"""The counter's speech processing: echo removed, the citizen's voice kept, the ports kept,
bad frames dropped. Speech is made by espeak-ng at run time (tests/appliance/audio_support.py);
the figures are in docs/audio.md and ``bench/echo.py``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import av
import numpy as np
import pytest

from appliance.config import parse_config
from appliance.hw.audio.frames import AudioFormatError, MonoResampler, mono_frame
from appliance.hw.audio.processed import ProcessedMicrophone, ProcessedSpeaker
from appliance.hw.audio.pyav import NullAudioSink, PyavAudioSink, PyavAudioSource, ToneSource
from appliance.hw.audio.webrtc import WebrtcAudioProcessing
from appliance.hw.camera.devices import ConfiguredMedia
from appliance.hw.ports import AudioSink, AudioSource
from tests.appliance.audio_support import (
    FAR_TEXT,
    FAR_VOICE,
    NEAR_TEXT,
    NEAR_VOICE,
    ArraySource,
    Room,
    active,
    energy,
    erle_db,
    looped,
    room_echo,
    run_chain,
    speech,
    stereo_frame,
    to_int16,
)

RATE = 48_000
CONVERGED_S = 3  # AEC3 needs a couple of seconds of the agent's voice to find the echo
ROOM = Room(gain=0.35)  # the speaker a metre away, the citizen half a metre: echo ~5 dB below


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    return looped(speech(FAR_TEXT, FAR_VOICE), 12)


@pytest.fixture(scope="module")
def near() -> np.ndarray:
    return speech(NEAR_TEXT, NEAR_VOICE)


async def test_far_end_echo_is_removed(far: np.ndarray) -> None:
    mic = to_int16(room_echo(far, ROOM))
    out = await run_chain(far, mic)
    start = CONVERGED_S * RATE
    assert erle_db(mic[start : len(out)], out[start:]) >= 15
    # Unprocessed, the agent would hear all of it (the baseline bench/echo.py prints).
    assert erle_db(mic, mic) == pytest.approx(0)


async def test_citizen_speech_survives_double_talk(far: np.ndarray, near: np.ndarray) -> None:
    start = 6 * RATE  # converged on the agent's voice, then both speak
    citizen = np.zeros(len(far))
    citizen[start : start + len(near)] = near[: len(far) - start]
    echo = room_echo(far, ROOM)
    both = await run_chain(far, to_int16(echo + citizen))
    alone = await run_chain(None, to_int16(room_echo(np.zeros_like(far), ROOM) + citizen))
    speaking = active(to_int16(citizen))[: len(both)]
    speaking[:start] = False
    attenuation = 10 * np.log10(energy(alone[speaking]) / energy(both[speaking]))
    assert attenuation <= 6  # measured 1.9 dB (bench/echo.py): bounded, not silenced
    # And what goes out while both speak is mostly the citizen, not the agent's echo.
    residual = await run_chain(far, to_int16(echo))
    assert 10 * np.log10(energy(both[speaking]) / energy(residual[speaking])) >= 15


# --- the ports --------------------------------------------------------------------------


def _processed_tone() -> AudioSource:
    tone = np.round(np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE) * 8000).astype(np.int16)
    return ProcessedMicrophone(ArraySource(tone), WebrtcAudioProcessing())


@pytest.mark.parametrize("make", [ToneSource, _processed_tone], ids=["tone", "processed"])
async def test_audio_source_contract(make: Callable[[], AudioSource]) -> None:
    source = make()
    assert isinstance(source, AudioSource)
    await source.open()
    try:
        a, b = await source.read(), await source.read()
    finally:
        await source.close()
    for frame in (a, b):
        assert isinstance(frame, av.AudioFrame)
        assert (frame.sample_rate, frame.samples) == (RATE, 960)
        assert frame.time_base is not None
        assert frame.time_base * RATE == 1
    assert b.pts is not None
    assert a.pts is not None
    assert b.pts - a.pts == 960


def _processed_null() -> AudioSink:
    return ProcessedSpeaker(NullAudioSink(), WebrtcAudioProcessing())


@pytest.mark.parametrize("make", [NullAudioSink, _processed_null], ids=["null", "processed"])
async def test_audio_sink_contract(make: Callable[[], AudioSink]) -> None:
    sink = make()
    assert isinstance(sink, AudioSink)
    await sink.open()
    try:
        for _ in range(3):  # what aiortc's decoder gives: 48 kHz stereo s16, 20 ms
            await sink.play(stereo_frame(np.zeros(960, dtype=np.int16)))
    finally:
        await sink.close()


async def test_processed_speaker_shows_the_far_end_to_the_processing() -> None:
    processing = WebrtcAudioProcessing()
    inner = NullAudioSink()
    speaker = ProcessedSpeaker(inner, processing)
    await speaker.open()
    await speaker.play(stereo_frame(np.zeros(960, dtype=np.int16)))
    await speaker.close()
    assert inner.frames_played == 1
    assert processing.blocks_analysed == 2  # two 10 ms blocks


# --- bad input ---------------------------------------------------------------------------


def test_a_video_frame_is_a_clear_error() -> None:
    with pytest.raises(AudioFormatError, match="expected an audio frame, got VideoFrame"):
        MonoResampler().convert(av.VideoFrame(16, 16, "rgb24"))


def test_a_change_of_rate_or_layout_is_resampled() -> None:
    resampler = MonoResampler()
    assert len(resampler.convert(mono_frame(np.zeros(960, dtype=np.int16), 0))) == 960
    cd = av.AudioFrame.from_ndarray(np.zeros((1, 882 * 2), dtype=np.int16), "s16", "stereo")
    cd.sample_rate = 44_100
    assert 900 <= len(resampler.convert(cd)) <= 960  # 20 ms at 48 kHz, less the filter's delay
    floats = av.AudioFrame.from_ndarray(np.zeros((2, 480), dtype=np.float32), "fltp", "stereo")
    floats.sample_rate = RATE
    assert len(resampler.convert(floats)) > 0


class _Mixed(ArraySource):
    """Every other frame is a video frame (a bug upstream): the chain must drop those."""

    def __init__(self) -> None:
        super().__init__(np.zeros(RATE, dtype=np.int16))
        self.reads = 0

    async def read(self) -> av.AudioFrame:
        self.reads += 1
        if self.reads % 2 == 0:
            return av.VideoFrame(16, 16, "rgb24")  # type: ignore[return-value]
        return await super().read()


async def test_bad_frames_are_dropped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    microphone = ProcessedMicrophone(_Mixed(), WebrtcAudioProcessing())
    speaker = ProcessedSpeaker(NullAudioSink(), WebrtcAudioProcessing())
    await microphone.open()
    await speaker.open()
    with caplog.at_level(logging.WARNING):
        frames = [await microphone.read() for _ in range(3)]
        await speaker.play(av.VideoFrame(16, 16, "rgb24"))  # type: ignore[arg-type]
        await speaker.play(stereo_frame(np.zeros(960, dtype=np.int16)))
    await microphone.close()
    await speaker.close()
    assert [f.samples for f in frames] == [960, 960, 960]
    assert microphone.dropped.count >= 2
    assert speaker.dropped.count == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings.count("microphone: frame dropped: expected an audio frame, got VideoFrame") == 1


# --- wiring --------------------------------------------------------------------------------

BASE = '[device]\nid = "c1"\nsite = "Mairie"\n'


def _media(hardware: str) -> ConfiguredMedia:
    return ConfiguredMedia(parse_config(BASE + "[hardware]\n" + hardware).hardware)


def test_a_real_microphone_and_speaker_share_one_processing() -> None:
    media = _media('audio_in = "alsa"\naudio_out = "alsa"\n')
    microphone, speaker = media.microphone(), media.speaker()
    assert isinstance(microphone, ProcessedMicrophone)
    assert isinstance(speaker, ProcessedSpeaker)
    assert microphone._processing is speaker._processing
    # The next call gets its own, in either order.
    speaker2, microphone2 = media.speaker(), media.microphone()
    assert isinstance(microphone2, ProcessedMicrophone)
    assert isinstance(speaker2, ProcessedSpeaker)
    assert microphone2._processing is speaker2._processing
    assert microphone2._processing is not microphone._processing


def test_processing_off_or_a_test_tone_sends_the_sound_as_it_is() -> None:
    raw = _media('audio_in = "alsa"\naudio_out = "alsa"\naudio_processing = "none"\n')
    assert isinstance(raw.microphone(), PyavAudioSource)
    assert isinstance(raw.speaker(), PyavAudioSink)
    tone = _media('audio_in = "test_tone"\n')
    assert isinstance(tone.microphone(), ToneSource)
    assert isinstance(tone.speaker(), NullAudioSink)


def test_the_native_runtime_is_released_before_python_finalizes() -> None:
    """A process that used the echo canceller stops livekit's runtime itself and exits 0."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from appliance.hw.audio.webrtc import WebrtcAudioProcessing\n"
        "from appliance.hw.audio.runtime import release_native_runtime\n"
        "from livekit.rtc._ffi_client import FfiClient\n"
        "apm = WebrtcAudioProcessing()\n"
        "apm.process_capture(np.zeros(960, dtype=np.int16))\n"
        "release_native_runtime()\n"
        "release_native_runtime()  # idempotent\n"
        "assert FfiClient._ffi_disposed\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
