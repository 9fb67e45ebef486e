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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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


class _Media:
    def __init__(self, passthrough: bool) -> None:
        self.passthrough = passthrough

    def camera(self) -> Any:
        from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource

        return (
            H264TestPatternSource(SIZE, FPS) if self.passthrough else TestPatternSource(SIZE, FPS)
        )

    def microphone(self) -> Any:
        from appliance.hw.audio.pyav import ToneSource

        return ToneSource()

    def speaker(self) -> Any:
        from appliance.hw.audio.pyav import NullAudioSink

        return NullAudioSink()


async def send(mode: str, seconds: float) -> dict[str, float]:
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
        _Media(passthrough=mode == "passthrough"),
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
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        await peer.close()
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
    frames = json.loads(await child.stdout.readline())["frames"]
    await child.wait()
    return {"cpu_per_s": cpu / wall, "wall_s": wall, "frames_received": frames}


async def main_async(modes: list[str], seconds: float) -> None:
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        results[mode] = await send(mode, seconds)
        r = results[mode]
        print(
            f"{mode:12s} {r['cpu_per_s']:.3f} CPU s per s of 720p{FPS} sent"
            f"  ({r['frames_received']:.0f} frames received in the child over the run)",
            flush=True,
        )
    base = results.get("passthrough")
    if base and base["cpu_per_s"] > 0:
        for mode, r in results.items():
            if mode != "passthrough":
                print(f"ratio {mode}/passthrough: {r['cpu_per_s'] / base['cpu_per_s']:.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per mode")
    parser.add_argument("--modes", default="passthrough,h264,vp8")
    parser.add_argument("--receiver", metavar="CODEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receive(args.receiver, args.seconds))
        return
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    asyncio.run(main_async(args.modes.split(","), args.seconds))


if __name__ == "__main__":
    main()
