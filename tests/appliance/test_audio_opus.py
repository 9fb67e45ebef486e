"""What the counter sends of the citizen's voice: Opus for speech (mono, ~28 kbit/s, in-band
FEC that rebuilds lost packets, DTX in silence), in packets aiortc sends as they are."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder as AiortcOpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from appliance.call.tracks import MicrophoneTrack
from appliance.hw.audio.opus import DTX_BYTES, OpusSpeechEncoder, SpeechSettings
from appliance.hw.audio.pyav import ToneSource
from tests.appliance.audio_support import (
    FAR_TEXT,
    FAR_VOICE,
    ArraySource,
    concealment,
    looped,
    opus_blocks,
    speech,
)

RATE = 48_000
NO_DTX = SpeechSettings(dtx=False)  # every 20 ms makes a packet: each loss is counted


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    return looped(speech(FAR_TEXT, FAR_VOICE), 20)


def test_packets_are_mono_at_the_speech_bitrate(voice: np.ndarray) -> None:
    packets = opus_blocks(voice, NO_DTX)
    assert all(p[0] & 0x04 == 0 for p in packets)  # TOC byte: the stereo flag is clear
    kbps = sum(map(len, packets)) * 8 / (len(packets) * 0.020) / 1000
    assert 20 <= kbps <= 34  # 28 kbit/s VBR (measured 27.3)


def test_fec_rebuilds_lost_packets_better_than_concealment(voice: np.ndarray) -> None:
    result = concealment(opus_blocks(voice, NO_DTX), 0.03)
    assert result.lost >= 10
    assert result.fec_error_db <= result.plc_error_db - 5  # measured −10.3 vs −2.6 dB
    without = concealment(opus_blocks(voice, SpeechSettings(dtx=False, fec=False)), 0.03)
    assert without.fec_error_db == pytest.approx(without.plc_error_db)  # nothing to rebuild


def test_silence_is_not_sent_with_dtx() -> None:
    encoder = OpusSpeechEncoder()
    silence = np.zeros(960, dtype=np.int16)
    sent = 0
    for i in range(150):  # 3 s
        frame = av.AudioFrame.from_ndarray(silence.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * 960, Fraction(1, RATE)
        sent += len(encoder.encode(frame))
    assert encoder.packets_dtx >= 100
    # a comfort-noise update every 400 ms, each followed by one DTX mark (WebRTC's rule, next
    # test): not 50 packets a second
    assert 2 <= sent <= 20 * 2


def test_each_silence_starts_with_one_dtx_packet_so_the_browser_knows_it_is_no_loss() -> None:
    """WebRTC's rule (``opus_interface.cc``): the first DTX frame after a sent frame goes
    out (the receiver's decoder switches to comfort noise), the ones after it stay home.
    Without it, Chromium concealed every pause of a call's speech as if packets were lost.
    (libopus sends a comfort-noise update every 400 ms of silence; a mark follows each.)"""
    encoder = OpusSpeechEncoder()
    noise = np.random.default_rng(1).normal(0, 6000, 960 * 50).astype(np.int16)  # 1 s
    signal = np.concatenate([noise, np.zeros(960 * 150, np.int16)] * 2)  # (1 s, 3 s silent) × 2
    sent: list[bytes] = []
    for i in range(len(signal) // 960):
        block = signal[i * 960 : (i + 1) * 960].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * 960, Fraction(1, RATE)
        sent += [bytes(p) for p in encoder.encode(frame)]
    marks = [len(payload) <= DTX_BYTES for payload in sent]
    assert sum(marks) >= 2  # each silence starts with one
    assert not any(a and b for a, b in itertools.pairwise(marks))  # never two in a row
    assert encoder.packets_dtx >= 200  # the rest of the silences stayed home


async def test_microphone_track_hands_aiortc_opus_packets_on_the_48k_clock() -> None:
    source = ToneSource()
    await source.open()
    track = MicrophoneTrack(source)
    try:
        packets = [await track.recv() for _ in range(25)]
    finally:
        track.stop()
        await source.close()
    assert all(isinstance(p, av.Packet) for p in packets)
    assert all(p.time_base == Fraction(1, RATE) for p in packets)
    assert [b.pts - a.pts for a, b in itertools.pairwise(packets)] == [960] * 24
    # What the far end's decoder makes of them: the 440 Hz tone (aiortc's decoder here).
    decoder = AiortcOpusDecoder()
    pcm = np.concatenate(
        [
            f.to_ndarray().reshape(-1, 2)[:, 0]
            for p in packets
            for f in decoder.decode(JitterFrame(bytes(p), p.pts))
        ]
    ).astype(np.float64)[RATE // 10 :]
    spectrum = np.abs(np.fft.rfft(pcm))
    peak_hz = np.argmax(spectrum) * RATE / len(pcm)
    assert peak_hz == pytest.approx(440, abs=10)
    with pytest.raises(MediaStreamError):
        await track.recv()  # stopped


async def test_a_test_tone_is_sent_whole_where_a_microphone_would_use_dtx() -> None:
    """Opus's voice detector takes a steady tone for background noise: with DTX, after a
    second it sent one packet in 21 and the agent's browser concealed 90 % of the tone."""
    source = ToneSource()
    await source.open()
    track = MicrophoneTrack(source)
    try:
        packets = [await track.recv() for _ in range(100)]  # 2 s of tone
    finally:
        track.stop()
        await source.close()
    assert [b.pts - a.pts for a, b in itertools.pairwise(packets)] == [960] * 99


async def test_microphone_track_skips_frames_it_cannot_use() -> None:
    class Bad(ArraySource):
        calls = 0

        async def read(self) -> av.AudioFrame:
            self.calls += 1
            if self.calls == 1:
                return av.VideoFrame(16, 16, "rgb24")  # type: ignore[return-value]
            return await super().read()

    tone = np.round(np.sin(np.arange(RATE) / 10) * 8000).astype(np.int16)
    track = MicrophoneTrack(Bad(tone))
    packet = await track.recv()
    track.stop()
    assert isinstance(packet, av.Packet)
    assert track.frames_dropped == 1
