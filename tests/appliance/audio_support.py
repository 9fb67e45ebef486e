"""Speech and echo made at run time, for the audio chain's tests and ``bench/echo.py``.

- ``speech(text, voice)``: French speech from espeak-ng, 48 kHz mono int16.
- ``room_echo(far, …)``: the loudspeaker's sound as the microphone hears it, through a
  synthetic room impulse response (a direct path after ``delay_ms``, then an exponentially
  decaying tail with the given RT60) plus a little noise.
- ``run_chain``: the counter's own wrappers (``ProcessedSpeaker`` then ``ProcessedMicrophone``
  sharing one ``WebrtcAudioProcessing``), fed 20 ms at a time as a call feeds them.
- ``erle_db``, ``energy``, ``active``: energy ratios and where someone speaks.
- ``opus_blocks`` and ``concealment``: speech through the counter's Opus encoder, packets
  dropped at random, decoded by libopus with and without FEC.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from appliance.hw.audio.frames import SAMPLE_RATE, Samples, mono_frame
from appliance.hw.audio.opus import OpusDecoder, OpusSpeechEncoder, SpeechSettings
from appliance.hw.audio.processed import ProcessedMicrophone, ProcessedSpeaker
from appliance.hw.audio.pyav import NullAudioSink
from appliance.hw.audio.webrtc import WebrtcAudioProcessing
from appliance.hw.pacing import Pacer

FRAME = 960  # 20 ms, what aiortc's decoder and the microphone hand over
FAR_VOICE = "fr+f3"  # the agent
NEAR_VOICE = "fr+m3"  # the citizen

FAR_TEXT = (
    "Bonjour, ici la mairie. Je vois bien votre dossier à l'écran. Pouvez-vous me montrer "
    "votre pièce d'identité devant la caméra, s'il vous plaît ? Merci. Il me faut aussi un "
    "justificatif de domicile de moins de trois mois, une facture d'électricité par exemple. "
    "Vous pouvez la poser sur le scanner, je la reçois tout de suite."
)
NEAR_TEXT = (
    "Oui, bien sûr, je l'ai apportée. Attendez, je cherche ma facture dans mon sac. "
    "Voilà, je la pose sur la vitre du scanner, c'est bon pour vous ?"
)


def speech(text: str, voice: str, *, wpm: int = 160) -> Samples:
    """French speech said by espeak-ng, at 48 kHz mono."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    parts: list[Samples] = []
    with av.open(io.BytesIO(wav)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.int16)


def looped(samples: Samples, seconds: float) -> Samples:
    """``samples`` repeated (with a short pause) to last ``seconds``."""
    pause = np.zeros(SAMPLE_RATE // 4, dtype=np.int16)
    unit = np.concatenate([samples, pause])
    count = int(np.ceil(seconds * SAMPLE_RATE / len(unit)))
    return np.tile(unit, count)[: int(seconds * SAMPLE_RATE)]


@dataclass(frozen=True)
class Room:
    delay_ms: float = 50.0  # loudspeaker to microphone, with the devices' buffers
    rt60_s: float = 0.3  # a furnished town-hall office
    direct_to_reverb_db: float = 0.0  # at about a metre, near the room's critical distance
    gain: float = 0.5  # direct path: the speaker a metre from a webcam's microphone
    noise_dbfs: float = -60.0  # ventilation, the street
    seed: int = 7


def impulse_response(room: Room) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(room.seed)
    delay = int(room.delay_ms * SAMPLE_RATE / 1000)
    tail_n = int(room.rt60_s * SAMPLE_RATE)
    t = np.arange(tail_n) / SAMPLE_RATE
    tail = rng.standard_normal(tail_n) * np.exp(-6.9 * t / room.rt60_s)
    tail *= np.sqrt(10 ** (-room.direct_to_reverb_db / 10) / np.sum(tail**2))
    h = np.zeros(delay + tail_n)
    h[delay] = 1.0
    h[delay + 1 :] += tail[1:]
    return h * room.gain


def room_echo(far: Samples, room: Room) -> npt.NDArray[np.float64]:
    """What the microphone hears of ``far`` (float, not yet clipped), with the room's noise."""
    rng = np.random.default_rng(room.seed + 1)
    h = impulse_response(room)
    size = 1 << int(np.ceil(np.log2(len(far) + len(h))))  # FFT convolution: seconds of audio
    spectrum = np.fft.rfft(far.astype(np.float64), size) * np.fft.rfft(h, size)
    echo = np.fft.irfft(spectrum, size)[: len(far)]
    noise = rng.standard_normal(len(far)) * 32768 * 10 ** (room.noise_dbfs / 20)
    return echo + noise


def to_int16(signal: npt.NDArray[np.float64]) -> Samples:
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


class ArraySource:
    """An ``AudioSource`` reading an array 20 ms at a time (no pacing: the test drives it)."""

    speech = True

    def __init__(self, samples: Samples) -> None:
        self._samples = samples
        self._at = 0

    async def open(self) -> None:
        pass

    async def read(self) -> av.AudioFrame:
        block = self._samples[self._at : self._at + FRAME]
        frame = mono_frame(block, self._at)
        self._at += FRAME
        return frame

    async def close(self) -> None:
        pass


class PacedSpeechSource(ArraySource):
    """French speech in a loop, 20 ms a frame in real time, as a microphone gives it: the
    voice of a call on a shaped line (benches), where a test tone would not do — Opus codes
    its in-band FEC only for frames its voice detector takes for speech."""

    def __init__(self, samples: Samples) -> None:
        super().__init__(samples)
        self._pacer = Pacer(FRAME / SAMPLE_RATE)
        self._sent = 0  # samples sent: the frames' timestamps go on across the loops

    async def read(self) -> av.AudioFrame:
        await self._pacer.tick()
        if self._at + FRAME > len(self._samples):
            self._at = 0
        block = self._samples[self._at : self._at + FRAME]
        self._at += FRAME
        self._sent += FRAME
        return mono_frame(block, self._sent - FRAME)


def stereo_frame(block: Samples) -> av.AudioFrame:
    """A frame as aiortc's Opus decoder hands it to the loudspeaker: 48 kHz stereo s16."""
    both = np.repeat(block.reshape(-1, 1), 2, axis=1).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(both, format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    return frame


async def run_chain(
    far: Samples | None, mic: Samples, processing: WebrtcAudioProcessing | None = None
) -> Samples:
    """``mic`` through the counter's processed microphone while the processed loudspeaker
    plays ``far`` (same length), 20 ms of each in turn; the processed microphone's output."""
    processing = processing or WebrtcAudioProcessing()
    microphone = ProcessedMicrophone(ArraySource(mic), processing)
    speaker = ProcessedSpeaker(NullAudioSink(), processing)
    await microphone.open()
    await speaker.open()
    out: list[Samples] = []
    try:
        for start in range(0, len(mic) - FRAME + 1, FRAME):
            if far is not None:
                await speaker.play(stereo_frame(far[start : start + FRAME]))
            frame = await microphone.read()
            out.append(frame.to_ndarray().reshape(-1))
    finally:
        await microphone.close()
        await speaker.close()
    return np.concatenate(out).astype(np.int16)


def energy(samples: npt.NDArray[np.generic]) -> float:
    return float(np.mean(np.asarray(samples, dtype=np.float64) ** 2)) + 1e-9


def erle_db(mic: Samples, out: Samples) -> float:
    """Echo return loss enhancement: how much less energy the output has than the input."""
    return 10 * float(np.log10(energy(mic) / energy(out)))


def active(samples: Samples, *, threshold_db: float = -40.0) -> npt.NDArray[np.bool_]:
    """Per sample: inside a 20 ms block whose level is within ``threshold_db`` of the loudest
    (where someone is speaking)."""
    n = len(samples) // FRAME
    blocks = samples[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    levels = 10 * np.log10(np.mean(blocks**2, axis=1) + 1e-9)
    loud = levels > levels.max() + threshold_db
    mask = np.zeros(len(samples), dtype=bool)
    mask[: n * FRAME] = np.repeat(loud, FRAME)
    return mask


# --- Opus under loss ---------------------------------------------------------------------


@dataclass(frozen=True)
class Concealment:
    lost: int
    packets: int
    plc_error_db: float  # lost frames rebuilt by loss concealment alone
    fec_error_db: float  # lost frames rebuilt from the next packet's FEC copy


def opus_blocks(samples: Samples, settings: SpeechSettings) -> list[bytes]:
    """Every 20 ms of ``samples`` as one Opus packet (DTX frames kept, to count every loss)."""
    encoder = OpusSpeechEncoder(settings)
    n = len(samples) // FRAME
    return [encoder.encode_block(samples[i * FRAME : (i + 1) * FRAME]) for i in range(n)]


def concealment(packets: list[bytes], loss: float, *, seed: int = 3) -> Concealment:
    """Drop ``loss`` of the packets at random; decode with and without FEC. Errors are the
    lost frames' energy of difference with the loss-free decoding, relative to its energy
    (dB; lower is better, 0 dB is as bad as silence)."""
    rng = np.random.default_rng(seed)
    lost = rng.random(len(packets)) < loss
    lost[0] = lost[-1] = False
    reference = OpusDecoder()
    clean = [reference.decode(p) for p in packets]
    plc, fec = OpusDecoder(), OpusDecoder()
    plc_out, fec_out = [], []
    for i, packet in enumerate(packets):
        plc_out.append(plc.decode(None) if lost[i] else plc.decode(packet))
        if not lost[i]:
            fec_out.append(fec.decode(packet))
        elif not lost[i + 1]:
            fec_out.append(fec.decode(packets[i + 1], fec=True))
        else:
            fec_out.append(fec.decode(None))
    index = np.flatnonzero(lost)
    ref = np.concatenate([clean[i] for i in index]).astype(np.float64)

    def error(out: list[Samples]) -> float:
        got = np.concatenate([out[i] for i in index]).astype(np.float64)
        return 10 * float(np.log10(energy(ref - got) / energy(ref)))

    return Concealment(int(lost.sum()), len(packets), error(plc_out), error(fec_out))
