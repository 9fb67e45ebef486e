"""Opus for speech on a poor line, through libopus itself (``ctypes``).

aiortc's own Opus encoder is fixed at 96 kbit/s stereo without FEC, and FFmpeg's libopus
wrapper (what PyAV offers) has no DTX switch; libopus's C API has every setting WebRTC uses:

- mono, ``OPUS_APPLICATION_VOIP`` and ``OPUS_SIGNAL_VOICE``, ``BITRATE_BPS`` (VBR);
- in-band FEC (LBRR: each packet also carries a coarse copy of the previous 20 ms), which
  libopus only adds when told to expect loss (``EXPECTED_LOSS_PCT``);
- DTX: during silence libopus emits 1–2-byte packets and, every 400 ms, one real frame of
  comfort noise. Like WebRTC we do not send the tiny ones: the RTP timestamp jumps, the
  sequence number does not, and the receiver knows it is silence, not loss.

aiortc's ``RTCRtpSender`` sends pre-encoded ``av.Packet``s as they are (its ``pack()`` converts
their ``pts``/``time_base`` to the 48 kHz RTP clock), so ``MicrophoneTrack`` hands it ours.
``OpusDecoder`` (with FEC) is for the measurements (tests, bench).

The library is Debian's ``libopus0`` on the counter (PyAV's FFmpeg links it), or the copy a
PyAV wheel bundles. Every call here is short and CPU-bound; callers run them off the loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import av
import numpy as np

from appliance.errors import HardwareError
from appliance.hw.audio.frames import (
    SAMPLE_RATE,
    TIME_BASE,
    MonoResampler,
    SampleClock,
    Samples,
    empty,
    pts_48k,
)

FRAME_SAMPLES = 960  # 20 ms: WebRTC's Opus frame; FEC carries one frame back
BITRATE_BPS = 28_000  # wideband speech with room for the FEC copy (Opus at 24–32 k is toll+)
EXPECTED_LOSS_PCT = 10  # makes libopus add FEC; tuned for the rural profiles' 1–3 % loss
MAX_PACKET_BYTES = 1_275  # RFC 6716's largest Opus frame
DTX_BYTES = 2  # a packet this small is a DTX frame: only the first of a silence is sent, to
# tell the receiver's decoder that silence starts (as WebRTC's opus_interface does); without
# it, the browser takes each pause for lost packets and conceals it

if TYPE_CHECKING:
    from av.stream import Stream

Packet: TypeAlias = "av.Packet[Stream]"  # generic in PyAV's stubs only

_APPLICATION_VOIP = 2048
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_SET_DTX = 4016
_SET_SIGNAL = 4024
_SIGNAL_VOICE = 3001
_COMPLEXITY = 5  # of 10: a Pi 4 core has other work; WebRTC uses 5 on ARM too


class OpusError(HardwareError):
    """libopus is missing, or refused a setting or a packet."""


@functools.cache
def libopus() -> ctypes.CDLL:
    """libopus, from the system or else the copy inside the PyAV wheel."""
    candidates: list[str] = []
    if found := ctypes.util.find_library("opus"):
        candidates.append(found)
    bundled = Path(av.__file__).parent.parent / "av.libs"
    candidates += [str(p) for p in sorted(bundled.glob("libopus*.so*"))]
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        _declare(lib)
        return lib
    raise OpusError("libopus not found (Debian: apt install libopus0)")


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_int32, c_void_p = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [c_int32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_encoder_create.restype = c_void_p
    lib.opus_encoder_destroy.argtypes = [c_void_p]
    lib.opus_encoder_ctl.argtypes = [c_void_p, c_int]  # variadic: the value follows, an int32
    lib.opus_encoder_ctl.restype = c_int
    lib.opus_encode.argtypes = [c_void_p, c_void_p, c_int, c_void_p, c_int32]
    lib.opus_encode.restype = c_int32
    lib.opus_decoder_create.argtypes = [c_int32, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_create.restype = c_void_p
    lib.opus_decoder_destroy.argtypes = [c_void_p]
    lib.opus_decode.argtypes = [c_void_p, c_void_p, c_int32, c_void_p, c_int, c_int]
    lib.opus_decode.restype = c_int
    lib.opus_strerror.argtypes = [c_int]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_get_version_string.restype = ctypes.c_char_p


def version() -> str:
    return str(libopus().opus_get_version_string().decode())


def _check(code: int, what: str) -> int:
    if code < 0:
        reason = libopus().opus_strerror(code).decode()
        raise OpusError(f"libopus {what}: {reason}")
    return code


@dataclass(frozen=True)
class SpeechSettings:
    bitrate_bps: int = BITRATE_BPS
    fec: bool = True
    expected_loss_pct: int = EXPECTED_LOSS_PCT
    dtx: bool = True


class OpusSpeechEncoder:
    """Audio frames in (any format: resampled to 48 kHz mono), Opus packets out, one per
    20 ms sent; ``pts`` in 1/48000 s follow the input frames' timestamps."""

    def __init__(self, settings: SpeechSettings | None = None) -> None:
        self.settings = settings or SpeechSettings()
        lib = libopus()
        error = ctypes.c_int(0)
        state = lib.opus_encoder_create(SAMPLE_RATE, 1, _APPLICATION_VOIP, ctypes.byref(error))
        _check(error.value, "encoder")
        self._state: int = state
        # Freed when the encoder is collected: a cancelled encode may still be in its thread.
        weakref.finalize(self, lib.opus_encoder_destroy, state)
        s = self.settings
        for request, value in (
            (_SET_BITRATE, s.bitrate_bps),
            (_SET_COMPLEXITY, _COMPLEXITY),
            (_SET_SIGNAL, _SIGNAL_VOICE),
            (_SET_INBAND_FEC, int(s.fec)),
            (_SET_PACKET_LOSS_PERC, s.expected_loss_pct),
            (_SET_DTX, int(s.dtx)),
        ):
            _check(lib.opus_encoder_ctl(state, request, ctypes.c_int32(value)), f"ctl {request}")
        self._resampler = MonoResampler()
        self._clock = SampleClock()
        self._pending = empty()
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        self.packets_sent = 0
        self.packets_dtx = 0  # 20 ms frames not sent: silence
        self._in_dtx = False  # the receiver has been told silence started

    def encode(self, frame: av.AudioFrame) -> list[Packet]:
        """The packets to send for ``frame`` (none while it fills a 20 ms frame, or in DTX)."""
        samples = self._resampler.convert(frame)
        self._clock.arrived(pts_48k(frame), len(samples))
        self._pending = np.concatenate([self._pending, samples])
        packets: list[Packet] = []
        while len(self._pending) >= FRAME_SAMPLES:
            block, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            pts = self._clock.take(FRAME_SAMPLES)
            payload = self.encode_block(block)
            dtx = len(payload) <= DTX_BYTES
            if dtx and self._in_dtx:
                self.packets_dtx += 1
                continue
            self._in_dtx = dtx
            packet = av.Packet(payload)
            packet.pts = pts
            packet.time_base = TIME_BASE
            packets.append(packet)
            self.packets_sent += 1
        return packets

    def encode_block(self, block: Samples) -> bytes:
        """One 20 ms block of 48 kHz mono samples → one Opus packet (DTX ones included)."""
        pcm = np.ascontiguousarray(block, dtype=np.int16)
        if len(pcm) != FRAME_SAMPLES:
            raise OpusError(f"an Opus frame is {FRAME_SAMPLES} samples, not {len(pcm)}")
        size = _check(
            libopus().opus_encode(
                self._state, pcm.ctypes.data, FRAME_SAMPLES, self._out, MAX_PACKET_BYTES
            ),
            "encode",
        )
        return self._out.raw[:size]


class OpusDecoder:
    """libopus's decoder, 48 kHz mono, with loss concealment and FEC (measurements)."""

    def __init__(self) -> None:
        lib = libopus()
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        _check(error.value, "decoder")
        self._state: int = state
        weakref.finalize(self, lib.opus_decoder_destroy, state)
        self._pcm = np.zeros(FRAME_SAMPLES * 6, dtype=np.int16)  # up to 120 ms

    def decode(self, packet: bytes | None, *, fec: bool = False) -> Samples:
        """``packet``'s 20 ms; ``None``: conceal a lost frame; ``fec``: rebuild the frame
        before ``packet`` from the copy it carries (PLC if it carries none)."""
        data = packet or b""
        n = libopus().opus_decode(
            self._state,
            data if data else None,
            len(data),
            self._pcm.ctypes.data,
            FRAME_SAMPLES if (fec or not data) else len(self._pcm),
            int(fec),
        )
        return self._pcm[: _check(n, "decode")].copy()


class PacketQueue:
    """Packets made but not yet handed to the sender (one ``recv()`` returns one)."""

    def __init__(self) -> None:
        self._packets: deque[Packet] = deque()

    def extend(self, packets: list[Packet]) -> None:
        self._packets.extend(packets)

    def pop(self) -> Packet | None:
        return self._packets.popleft() if self._packets else None
