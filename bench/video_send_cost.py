"""CPU cost of sending 720p30 video from the counter: H.264 passthrough vs aiortc encoding.

Usage: ``.venv/bin/python bench/video_send_cost.py [--seconds 20] [--modes passthrough,h264,vp8]``

For each mode the counter's real ``CallPeer`` (this process) answers an aiortc "agent"
that runs in a child process (so its decoding is not counted) and offers receive-only
video over loopback (the machine's LAN address). After a warm-up, the sender's CPU time
(user + system, all threads: ``time.process_time``) is measured over the window and divided
by the wall time: CPU seconds per second of video sent.

- ``passthrough``: pre-encoded H.264 packets (the Pi 4's hardware encoder's case); aiortc
  only packetizes them. The clip is encoded before the window opens, as a hardware
  encoder would cost the CPU nothing.
- ``h264`` / ``vp8``: raw 1280×720 frames encoded by aiortc (libx264 / libvpx).
- ``unpaced`` (not in the default run): the passthrough's clip sent as fast as the loop
  turns, never sleeping: its CPU time per frame is the passthrough's work on warm caches,
  against the paced figure, where every frame wakes a process that slept 33 ms.

``--profile`` runs the passthrough once more under cProfile and says where its time goes,
per frame, by component (ours, aiortc's packetizer, aiortc's RTP loop, SRTP, ICE and the
socket, asyncio's loop). cProfile inflates Python calls several times: shares, not figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import pstats
import struct
import sys
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

SIZE = (1280, 720)
FPS = 30
WARMUP_S = 3.0


# --- the receiving "agent" (child process) -------------------------------------------------


async def receive(codec: str, seconds: float) -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    wanted = [
        c
        for c in RTCRtpReceiver.getCapabilities("video").codecs
        if c.mimeType.lower() == f"video/{codec}"
    ]
    transceiver.setCodecPreferences(wanted)
    frames = 0
    tasks: list[asyncio.Future[None]] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def count() -> None:
            nonlocal frames
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                frames += 1

        tasks.append(asyncio.ensure_future(count()))

    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"offer": pc.localDescription.sdp}), flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(json.loads(line)["answer"], "answer"))
    with contextlib.suppress(TimeoutError):  # until the sender says "stop", or a bound
        await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), timeout=seconds)
    print(json.dumps({"frames": frames}), flush=True)
    await pc.close()


# --- the sending counter (this process) ------------------------------------------------------


def unpaced_source() -> Any:
    """The passthrough's source, its pacer replaced by one that only yields to the loop."""
    from appliance.hw.camera.pattern import H264TestPatternSource
    from appliance.hw.pacing import Pacer

    class Unpaced(Pacer):
        ticks = 0

        async def tick(self) -> float:
            await asyncio.sleep(0)  # let RTCP, ICE and the measurement run
            Unpaced.ticks += 1
            return Unpaced.ticks * self.period_s

    source = H264TestPatternSource(SIZE, FPS)
    source._pacer = Unpaced(1 / FPS)  # a bench's stand-in: no public way to unpace it
    return source


class _Media:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def camera(self) -> Any:
        from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource

        if self.mode == "unpaced":
            return unpaced_source()
        if self.mode == "passthrough":
            return H264TestPatternSource(SIZE, FPS)
        return TestPatternSource(SIZE, FPS)

    def microphone(self) -> Any:
        from appliance.hw.audio.pyav import ToneSource

        return ToneSource()

    def speaker(self) -> Any:
        from appliance.hw.audio.pyav import NullAudioSink

        return NullAudioSink()


# Where a profiled function's own time goes: the first pattern in its file name wins.
COMPONENTS = [
    ("ours (appliance.*: track, source, pacer, meter)", ("/appliance/",)),
    ("aiortc packetizer (codecs/h264)", ("aiortc/codecs/",)),
    (
        "aiortc RTP loop (packet, extensions, NTP clock)",
        ("aiortc/rtcrtpsender", "aiortc/rtp.py", "aiortc/clock", "aiortc/mediastreams"),
    ),
    ("SRTP (pylibsrtp, DTLS transport)", ("pylibsrtp", "aiortc/rtcdtlstransport")),
    ("ICE and socket (aioice, sendto)", ("aioice", "sendto", "selector_events")),
    (
        "asyncio loop (timers, callbacks, tasks)",
        ("asyncio/", "selectors", "heapq", "_asyncio", "contextvars"),
    ),
]


def by_component(profile: cProfile.Profile) -> dict[str, float]:
    """The profile's own time (idle waiting excluded) summed per component, in seconds."""
    totals: dict[str, float] = {}
    stats: Any = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    for (file, _line, name), (_cc, _nc, own, _ct, _callers) in stats.items():
        where = f"{file}:{name}"
        if "poll" in name and "epoll" in where:
            continue  # sleeping in epoll_wait: not CPU
        component = next(
            (label for label, marks in COMPONENTS if any(m in where for m in marks)),
            "other (builtins, len, struct…)",
        )
        totals[component] = totals.get(component, 0.0) + own
    return totals


async def send(
    mode: str, seconds: float, profile: cProfile.Profile | None = None
) -> dict[str, float]:
    from appliance.call.peer import CallPeer

    codec = "vp8" if mode == "vp8" else "h264"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--receiver",
        codec,
        "--seconds",
        str(3 * seconds + 60),  # a bound only: the sender says "stop"
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    connected = asyncio.Event()
    peer = CallPeer(
        _Media(mode),
        screen=None,
        ice_servers=[],
        on_connected=connected.set,
        on_lost=lambda: None,
    )
    try:
        offer = json.loads(await child.stdout.readline())["offer"]
        answer = await peer.answer(offer)
        child.stdin.write((json.dumps({"answer": answer}) + "\n").encode())
        await child.stdin.drain()
        await asyncio.wait_for(connected.wait(), timeout=20)
        await asyncio.sleep(WARMUP_S)
        reads = count_reads(peer.camera)
        cpu0, wall0 = time.process_time(), time.monotonic()
        if profile is not None:
            profile.enable()
        await asyncio.sleep(seconds)
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        sent = reads[0]
    finally:
        await peer.close()
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
    frames = json.loads(await child.stdout.readline())["frames"]
    await child.wait()
    return {
        "cpu_per_s": cpu / wall,
        "cpu_us_per_frame": 1e6 * cpu / max(1, sent),
        "frames_sent_per_s": sent / wall,
        "wall_s": wall,
        "frames_received": frames,
    }


def count_reads(camera: Any) -> list[int]:
    """A counter of the camera's pictures read by the sender from now on."""
    reads = [0]
    read = camera.read

    async def counted() -> Any:
        item = await read()
        reads[0] += 1
        return item

    camera.read = counted
    return reads


async def main_async(modes: list[str], seconds: float, profile: bool) -> None:
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        results[mode] = await send(mode, seconds)
        r = results[mode]
        print(
            f"{mode:12s} {r['cpu_per_s']:.4f} CPU s per s of 720p{FPS} sent"
            f"  ({r['cpu_us_per_frame']:.0f} CPU µs per frame, {r['frames_sent_per_s']:.0f}"
            f" frames/s sent, {r['frames_received']:.0f} received in the child over the run)",
            flush=True,
        )
    base = results.get("passthrough")
    if base and base["cpu_per_s"] > 0:
        for mode, r in results.items():
            if mode not in ("passthrough", "unpaced"):
                print(
                    f"ratio {mode}/passthrough: {r['cpu_per_s'] / base['cpu_per_s']:.1f}×"
                    f"  (passthrough/{mode}: {base['cpu_per_s'] / r['cpu_per_s']:.3f})"
                )
    if profile:
        await print_profile(seconds)


def small_work(payloads: list[bytes]) -> int:
    """A few hundred µs of small Python work at most, like a frame's RTP headers."""
    packed = 0
    for payload in payloads:
        for sequence in range(12):
            packed += len(struct.pack("!BBHLL", 0x80, 102, sequence, 0, 0) + payload[:12])
        packed += len(hashlib.sha1(payload, usedforsecurity=False).digest())
    return packed


async def wake_cost(period_s: float, wakes: int) -> float:
    """CPU µs per wake of a loop doing the same small work every ``period_s`` (0: never
    sleeping)."""
    payloads = [bytes(1200)] * 7
    cpu0 = time.process_time()
    for _ in range(wakes):
        small_work(payloads)
        await asyncio.sleep(period_s)
    return 1e6 * (time.process_time() - cpu0) / wakes


async def print_profile(seconds: float) -> None:
    hot = await wake_cost(0, 20_000)
    paced = await wake_cost(1 / FPS, round(seconds * FPS / 2))
    print(
        f"this machine: the same small work costs {hot:.0f} CPU µs on a loop that never"
        f" sleeps, {paced:.0f} µs woken {FPS} times a second"
    )
    profiler = cProfile.Profile()
    r = await send("passthrough", seconds, profiler)
    frames = r["frames_sent_per_s"] * r["wall_s"]
    totals = by_component(profiler)
    whole = sum(totals.values())
    print(f"profile of the passthrough ({frames:.0f} frames; cProfile's own time, idle excluded):")
    for label, own in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {label:50s} {1e6 * own / frames:6.0f} µs/frame  {100 * own / whole:4.0f} %")
    print("top functions (own time):")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per mode")
    parser.add_argument("--modes", default="passthrough,h264,vp8", help="also: unpaced")
    parser.add_argument("--profile", action="store_true", help="profile the passthrough")
    parser.add_argument("--receiver", metavar="CODEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receive(args.receiver, args.seconds))
        return
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    asyncio.run(main_async(args.modes.split(","), args.seconds, args.profile))


if __name__ == "__main__":
    main()
