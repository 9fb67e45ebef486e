"""Calls on a rural line: the real Chromium agent ↔ the real counter (pre-encoded H.264 test
pattern, 1280×720 at 30 frames/s at the top of its ladder) through the shaped test network
(``tests/support/shaped``, ``docs/rural-network.md``), with the video following the line
and — side by side, in the same run — with it fixed as before issue 19.

Per profile and mode, over CALLS calls of SECONDS each, it prints:
- time from "Répondre" to the first frame, both ways (median, p90);
- share of the call with the video frozen (> 500 ms without a new frame), each side;
- audio concealment at the agent (concealed / received samples) and its longest stretch,
  beside the share of the voice's packets the line lost and the Opus FEC copies Chromium
  received. The counter's microphone says French speech (espeak-ng, the citizen's voice,
  in a loop with pauses: ``tests.appliance.audio_support.PacedSpeechSource``), since Opus
  codes in-band FEC only for what its voice detector takes for speech; ``--voice tone``
  sends the counter's 440 Hz test tone instead (no DTX, and almost no FEC);
- what reached the agent (kbit/s, video and voice) against the line's uplink;
- the rungs the counter's video took; on ``coupure``, how long after the line came back the
  video was at its rung of before the cut again; on ``udp-bloque``, whether the call went
  through the TURN relay.

Runs in a network namespace of its own (it re-executes itself under ``unshare --net``;
root needed), as the tests of ``tests/netns`` do.

    .venv/bin/python bench/rural_call.py [CALLS] [--seconds S] [--profiles adsl,coupure]
        [--voice speech|tone]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.hw.ports import AudioSource
    from tests.support import call_metrics as cm

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALLS = 3
DEFAULT_SECONDS = 30.0
AFTER_CUT_S = 15.0  # coupure: the call goes on this long after the line comes back
SETTLED_S = 10.0  # coupure: "its rung before the cut" is the one sent longest in this window
CUT_AFTER_S = 20.0  # coupure: the line falls this long after the first frame (the video
# has settled at the rung the line holds; the profile's own schedule falls at 10 s)
CAMERA = (1280, 720)  # at 30 frames/s: the top of the ladder is 720p30
SPEECH_LOOP_S = 60.0  # the speech's loop (pauses included); each call reads it from the start
PROFILES = ("adsl", "mauvais-jour", "coupure", "udp-bloque")


@dataclass
class CallFigures:
    browser_first_s: float
    counter_first_s: float
    browser_frozen: float  # share of the call
    counter_frozen: float
    concealment: float
    longest_concealment_s: float
    voice: cm.VoiceFigures  # the voice's packets: lost, late, FEC copies, NetEq's buffer
    received_kbps: float
    rungs: list[str] = field(default_factory=list)
    back_after_cut_s: float | None = None  # coupure only
    relayed: bool | None = None


async def one_call(rig: Any, seconds: float, *, coupure: bool) -> CallFigures:
    from appliance.call.machine import Phase
    from tests.support import call_metrics as cm
    from tests.support.call_harness import wait_for
    from tests.support.shaped.profiles import CUT_KBIT, CUT_LENGTH_S, Step

    screen_clock = cm.CounterScreenClock()
    screen_clock.attach(rig.screen)
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "queued", 60)
    row = rig.page.locator("#queue li").first
    await row.wait_for(timeout=60_000)
    await cm.take(rig.page)
    start = time.time()
    await row.get_by_role("button", name="Répondre").click()
    browser_first = counter_first = None
    async with asyncio.timeout(60):
        while browser_first is None or counter_first is None:
            stats = await rig.browser_stats()
            if browser_first is None and stats is not None and stats["framesDecoded"] > 0:
                browser_first = time.time() - start
            if counter_first is None and screen_clock.times:
                counter_first = screen_clock.times[0] - start
            await asyncio.sleep(0.01)
    rungs: list[tuple[float, str, int]] = []
    peer = rig.agent.peer
    climber = peer.climber if peer is not None else None
    if climber is not None:
        rungs.append((time.time(), climber.rung.name, climber.rung.bitrate_bps))
        peer.rung_listeners.append(lambda r: rungs.append((time.time(), r.name, r.bitrate_bps)))
    media_start = time.time()
    steps = [Step(CUT_AFTER_S, CUT_KBIT), Step(CUT_AFTER_S + CUT_LENGTH_S, None)]
    schedule = asyncio.create_task(rig.network.play_schedule(steps)) if coupure else None
    length = CUT_AFTER_S + CUT_LENGTH_S + AFTER_CUT_S if coupure else seconds
    await asyncio.sleep(length)
    end = time.time()
    frames, samples = await cm.take(rig.page)
    if schedule is not None:
        schedule.cancel()
    await rig.page.get_by_role("button", name="Raccrocher").click()
    await rig.wait_idle()
    first_frame = min(frames) if frames else end
    back = None
    if coupure and rungs:
        cut_at = media_start + CUT_AFTER_S
        restored_at = cut_at + CUT_LENGTH_S
        back = back_at_rung(rungs, settled_rung(rungs, cut_at), restored_at)
    return CallFigures(
        browser_first_s=browser_first,
        counter_first_s=counter_first,
        browser_frozen=cm.frozen_s(frames, first_frame, end) / (end - first_frame),
        counter_frozen=cm.frozen_s(screen_clock.times, media_start, end) / (end - media_start),
        concealment=cm.concealment_ratio(samples),
        longest_concealment_s=cm.longest_concealment_s(samples),
        voice=cm.voice_figures(samples),
        received_kbps=cm.received_kbps(samples),
        rungs=[name for _, name, _ in rungs],
        back_after_cut_s=back,
        relayed=bool(samples[-1]["relay"]) if samples else None,
    )


def settled_rung(rungs: list[tuple[float, str, int]], cut_at: float) -> int:
    """The bitrate of the rung sent longest in the ``SETTLED_S`` before the cut: where the
    video had settled (a probe of the rung above, undone within a second, is not it)."""
    spans: dict[int, float] = {}
    edges = [*rungs, (cut_at, "", 0)]
    for (start, _, bitrate), (end, _, _) in itertools.pairwise(edges):
        start, end = max(start, cut_at - SETTLED_S), min(end, cut_at)
        if end > start:
            spans[bitrate] = spans.get(bitrate, 0.0) + end - start
    return max(spans, key=lambda bitrate: spans[bitrate])


def back_at_rung(rungs: list[tuple[float, str, int]], bitrate: int, restored_at: float) -> float:
    """Seconds after ``restored_at`` until the video was at ``bitrate`` or better again."""
    at_restore = [b for t, _, b in rungs if t <= restored_at][-1]
    if at_restore >= bitrate:
        return 0.0
    later = [t for t, _, b in rungs if t > restored_at and b >= bitrate]
    return later[0] - restored_at if later else float("inf")


def speech_microphone() -> Callable[[], AudioSource]:
    """Each call's microphone: the citizen's French speech, looped (made once)."""
    from tests.appliance.audio_support import (
        FAR_TEXT,
        NEAR_TEXT,
        NEAR_VOICE,
        PacedSpeechSource,
        looped,
        speech,
    )

    samples = looped(speech(NEAR_TEXT + " " + FAR_TEXT, NEAR_VOICE), SPEECH_LOOP_S)
    return lambda: PacedSpeechSource(samples)


async def run_profile(
    profile: str,
    *,
    adaptation: bool,
    calls: int,
    seconds: float,
    microphone: Callable[[], AudioSource] | None,
) -> list[CallFigures]:
    from tests.support import call_metrics as cm
    from tests.support.call_harness import call_rig
    from tests.support.coturn import coturn
    from tests.support.shaped.network import shaped_network

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            network = stack.enter_context(shaped_network(profile))
            settings: dict[str, Any] = {}
            if network.profile.block_udp:  # the relay, in the office: TCP is all that passes
                turn = stack.enter_context(coturn(Path(tmp) / "turn", host=network.office_address))
                settings = turn.server_settings(("tcp", "udp"))
            rig = await stack.enter_async_context(
                call_rig(
                    Path(tmp),
                    camera_encoding="h264",
                    camera_size=CAMERA,
                    network=network,
                    adaptation=adaptation,
                    microphone=microphone,
                    **settings,
                )
            )
            await cm.install(rig.page)
            for _ in range(calls):
                results.append(await one_call(rig, seconds, coupure=profile == "coupure"))
    return results


def fmt_s(values: list[float]) -> str:
    from tests.support.call_metrics import p90

    return f"{statistics.median(values):5.2f} / {p90(values):5.2f} s"


def report(profile: str, capacity_kbit: int | None, rows: dict[str, list[CallFigures]]) -> None:
    print(f"\n== {profile} (uplink {capacity_kbit or '∞'} kbit/s)")
    header = (
        f"{'mode':9} {'1st frame agent':>16} {'1st frame counter':>18} {'frozen agent':>12} "
        f"{'frozen counter':>14} {'concealed':>9} {'longest':>8} {'kbit/s':>7} {'of line':>7}"
    )
    print(header)
    means: dict[str, dict[str, float]] = {}
    for mode, results in rows.items():
        m = {
            "frozen": statistics.mean(r.browser_frozen for r in results),
            "counter_frozen": statistics.mean(r.counter_frozen for r in results),
            "concealment": statistics.mean(r.concealment for r in results),
            "longest": max(r.longest_concealment_s for r in results),
            "kbps": statistics.mean(r.received_kbps for r in results),
        }
        means[mode] = m
        share = f"{m['kbps'] / capacity_kbit:6.0%}" if capacity_kbit else "     -"
        print(
            f"{mode:9} {fmt_s([r.browser_first_s for r in results]):>16} "
            f"{fmt_s([r.counter_first_s for r in results]):>18} {m['frozen']:12.1%} "
            f"{m['counter_frozen']:14.1%} {m['concealment']:9.2%} {m['longest']:7.2f}s "
            f"{m['kbps']:7.0f} {share:>7}"
        )
    for mode, results in rows.items():
        for index, r in enumerate(results, 1):
            v = r.voice
            extra = (
                f"; voice: {v.lost:.2%} of packets lost, {v.late:.2%} too late,"
                f" {r.concealment:.2%} concealed in {v.events} stretches,"
                f" {v.fec} FEC copies received, buffer {v.buffer_ms:.0f} ms"
            )
            if r.back_after_cut_s is not None:
                extra += (
                    f"; back at its rung of before the cut {r.back_after_cut_s:.1f} s"
                    " after the line came back"
                )
            if r.relayed is not None:
                extra += f"; through TURN: {'yes' if r.relayed else 'no'}"
            print(f"   {mode} call {index}: rungs {' → '.join(r.rungs) or '(fixed)'}{extra}")
    if "adaptive" in means and "fixed" in means:
        a, f = means["adaptive"], means["fixed"]
        ratio = f["frozen"] / a["frozen"] if a["frozen"] > 0 else float("inf")
        print(
            f"   frozen share, fixed ÷ adaptive: {ratio:.1f}× "
            f"({f['frozen']:.1%} → {a['frozen']:.1%}); "
            f"concealment {f['concealment']:.2%} → {a['concealment']:.2%}"
        )


async def measure(calls: int, seconds: float, profiles: list[str], voice: str) -> None:
    from tests.support.shaped.profiles import profile_named

    print(
        f"{calls} call(s) per profile and mode, {seconds:.0f} s each (coupure: its schedule); "
        "Chromium agent ↔ counter, H.264 test pattern up to 720p30; "
        f"the counter's voice: {voice}; first-frame columns: median / p90"
    )
    microphone = speech_microphone() if voice == "speech" else None
    for profile in profiles:
        modes = (
            {"adaptive": True} if profile == "udp-bloque" else {"adaptive": True, "fixed": False}
        )
        rows = {}
        for mode, adaptation in modes.items():
            rows[mode] = await run_profile(
                profile,
                adaptation=adaptation,
                calls=calls,
                seconds=seconds,
                microphone=microphone,
            )
        report(profile, profile_named(profile).up.rate_kbit, rows)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support.own_netns import inside, run_again_inside

    if not inside():
        return run_again_inside()
    parser = argparse.ArgumentParser()
    parser.add_argument("calls", nargs="?", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--voice", choices=("speech", "tone"), default="speech")
    parser.add_argument("--log", help="the climber's log (every REMB, loss, step) to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.log:
        handler = logging.FileHandler(args.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        climber = logging.getLogger("appliance.call.adaptation")
        climber.setLevel(logging.DEBUG)
        climber.addHandler(handler)
    asyncio.run(measure(args.calls, args.seconds, args.profiles.split(","), args.voice))
    return 0


if __name__ == "__main__":
    sys.exit(main())
