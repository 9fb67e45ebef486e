"""The counter's speech processing on a simulated echo path: echo return loss enhancement
(ERLE) in single talk and the citizen's speech kept in double talk; and the Opus settings
under packet loss.

    .venv/bin/python bench/echo.py [SECONDS]

Speech is made at run time by espeak-ng (the agent: ``fr+f3``; the citizen: ``fr+m3``). The
agent's voice goes through the counter's real ``ProcessedSpeaker`` (what the loudspeaker
plays, shown to the echo canceller) and comes back into the microphone through a synthetic
room: a direct path after ``delay_ms``, an exponentially decaying tail (RT60) whose energy
is set by the direct-to-reverberant ratio, and noise at -60 dBFS. The
microphone's signal goes through the real ``ProcessedMicrophone`` (libwebrtc's APM via
livekit: AEC3, noise suppression, gain control, high-pass filter), 20 ms at a time, sharing
one ``WebrtcAudioProcessing`` as in a call. Two rooms: ``typical`` (loudspeaker ~1 m from
the microphone, citizen ~0.5 m: the echo ~5 dB below the citizen's voice) and ``loud``
(the echo as loud as the citizen), ``reverberant`` (a bare hall: 80 ms, RT60 0.6 s, the
tail 6 dB above the direct sound).

- ERLE: 10·log10(E[mic²]/E[out²]) over the single-talk part, after ``CONVERGED_S``.
- Double talk: the citizen speaks over the agent from ``DOUBLE_TALK_AT_S``. Attenuation of
  the citizen's speech where they speak: against the same chain fed the citizen without the
  echo (what the echo canceller takes away), and against the raw citizen (what the agent
  hears compared with what was said; gain control included).
- Unprocessed: the microphone as it is (today's counter): 0 dB of both.
- Opus: the same speech encoded with the counter's settings, 3 % of packets dropped at
  random, decoded by libopus with loss concealment only and with FEC; error energy of the
  lost frames against the loss-free decoding.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.hw.audio.opus import SpeechSettings, version  # noqa: E402
from tests.appliance.audio_support import (  # noqa: E402
    FAR_TEXT,
    FAR_VOICE,
    NEAR_TEXT,
    NEAR_VOICE,
    Room,
    active,
    concealment,
    energy,
    erle_db,
    looped,
    opus_blocks,
    room_echo,
    run_chain,
    speech,
    to_int16,
)

RATE = 48_000
DEFAULT_SECONDS = 24
CONVERGED_S = 3  # AEC3 needs the agent's voice for a couple of seconds
DOUBLE_TALK_AT_S = 12
ROOMS = {
    "typical": Room(gain=0.35),
    "loud": Room(gain=0.6),
    "reverberant": Room(gain=0.35, delay_ms=80, rt60_s=0.6, direct_to_reverb_db=-6),
}
LOSS = 0.03


def level_db(samples: np.ndarray) -> float:
    return 10 * float(np.log10(energy(samples[active(samples)]) / 32768**2))


async def echo_figures(name: str, room: Room, far: np.ndarray, near: np.ndarray) -> None:
    start = DOUBLE_TALK_AT_S * RATE
    citizen = np.zeros(len(far))
    citizen[start : start + len(near)] = near[: len(far) - start]
    echo = room_echo(far, room)
    mic = to_int16(echo)
    began = time.process_time()
    out = await run_chain(far, mic)
    cpu = (time.process_time() - began) / (len(far) / RATE)
    both = await run_chain(far, to_int16(echo + citizen))
    alone = await run_chain(None, to_int16(room_echo(np.zeros_like(far), room) + citizen))
    window = slice(CONVERGED_S * RATE, start)
    erle = erle_db(mic[window], out[window])
    speaking = active(to_int16(citizen))[: len(both)]
    speaking[:start] = False
    vs_chain = 10 * np.log10(energy(alone[speaking]) / energy(both[speaking]))
    vs_raw = 10 * np.log10(energy(citizen[: len(both)][speaking]) / energy(both[speaking]))
    echo_vs_near = level_db(mic) - level_db(to_int16(citizen))
    print(
        f"{name:12} {room.delay_ms:4.0f} ms {room.rt60_s:4.1f} s {echo_vs_near:+6.1f} dB"
        f" | unprocessed {0.0:5.1f} dB {0.0:5.1f} dB"
        f" | processed {erle:5.1f} dB {vs_chain:5.1f} dB ({vs_raw:+.1f} dB vs raw)"
        f" | {cpu * 100:.1f} % CPU"
    )


def opus_figures(voice: np.ndarray) -> None:
    print(f"\nOpus ({version()}), {LOSS:.0%} of 20 ms packets lost at random")
    print(f"{'settings':44} {'kbit/s':>7} {'lost':>5} {'PLC only':>9} {'with FEC':>9}")
    counter = SpeechSettings(dtx=False)
    cases = [
        ("counter: 28 kbit/s, FEC, expected loss 10 %", counter),
        ("FEC off", replace(counter, fec=False)),
        ("FEC on, expected loss 3 %", replace(counter, expected_loss_pct=3)),
        ("24 kbit/s, FEC, expected loss 10 %", replace(counter, bitrate_bps=24_000)),
    ]
    for label, settings in cases:
        packets = opus_blocks(voice, settings)
        kbps = sum(map(len, packets)) * 8 / (len(packets) * 0.020) / 1000
        result = concealment(packets, LOSS)
        print(
            f"{label:44} {kbps:7.1f} {result.lost:5d}"
            f" {result.plc_error_db:7.1f} dB {result.fec_error_db:7.1f} dB"
        )
    with_dtx = opus_blocks(voice, SpeechSettings())
    sent = sum(1 for p in with_dtx if len(p) > 2)
    print(f"DTX on: {sent} of {len(with_dtx)} packets sent ({sent / len(with_dtx):.0%})")


async def main(seconds: float) -> None:
    far = looped(speech(FAR_TEXT, FAR_VOICE), seconds)
    near = speech(NEAR_TEXT, NEAR_VOICE)
    print(
        f"{seconds:.0f} s of the agent's speech; the citizen from {DOUBLE_TALK_AT_S} s"
        f" ({len(near) / RATE:.1f} s); ERLE after {CONVERGED_S} s; goals ERLE ≥ 25 dB,"
        " double talk ≤ 3 dB"
    )
    print(
        f"{'room':12} {'delay':>7} {'RT60':>6} {'echo/near':>9}"
        " | unprocessed: ERLE, double talk | processed: ERLE, double talk"
    )
    for name, room in ROOMS.items():
        await echo_figures(name, room, far, near)
    opus_figures(looped(speech(FAR_TEXT + " " + NEAR_TEXT, FAR_VOICE), 30))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SECONDS))
