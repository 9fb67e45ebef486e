"""The call end to end: real headless Chromium as a Caf agent ↔ the real counter agent, through
the real fleet server, over loopback in a network namespace of its own.

- press → the call is queued in the console → "Répondre" → video decoded on both sides and
  audio flowing → the agent hangs up → both idle; a second call ended by a long press;
- the media path cut for 5 s mid-call → frames flow again without a new press;
- nobody answers → the call is logged missed, the screen says so, the counter goes idle;
- a pre-encoded H.264 source is sent without re-encoding and Chromium decodes it.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from appliance.call.machine import Phase
from appliance.hw.ports import LightPattern, ScreenState
from fleet_server.models import CallRecord, EventRecord
from tests.support.call_harness import CallRig, call_rig, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = 15  # decoded frames that prove video flows (half a second at 30 fps)
CUT_S = 5.0  # the figure: the media path is cut this long


def call_reasons(rig: CallRig) -> list[str | None]:
    with rig.live.sessions() as session:
        rows = session.scalars(select(CallRecord).order_by(CallRecord.requested_at)).all()
        return [row.end_reason for row in rows]


def call_event_kinds(rig: CallRig) -> list[str]:
    with rig.live.sessions() as session:
        rows = session.scalars(select(EventRecord).order_by(EventRecord.at)).all()
        return [row.kind for row in rows if row.kind.startswith("call_")]


def speaker_frames(rig: CallRig) -> int:
    peer = rig.agent.peer
    speaker: Any = peer.speaker if peer is not None else None
    return int(getattr(speaker, "frames_played", 0))


async def connect_call(rig: CallRig) -> None:
    """Press, answer, and wait for media both ways."""
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
    await rig.answer()
    stats = await rig.wait_browser_frames(FRAMES)
    await wait_for(lambda: rig.screen.frames > FRAMES, "agent's video on the counter's screen")
    assert rig.phase is Phase.IN_CALL
    assert stats["framesDecoded"] > FRAMES


async def test_press_answer_talk_and_hang_up_both_ways(tmp_path: Path) -> None:
    async with call_rig(tmp_path) as rig:
        await connect_call(rig)
        assert rig.screen.state is ScreenState.IN_CALL
        assert rig.appliance.hardware.light.pattern is LightPattern.IN_CALL
        assert rig.screen.last_frame_size is not None  # Chromium's fake camera, decoded
        await wait_for(lambda: speaker_frames(rig) > 10, "agent's voice at the counter")
        async with asyncio.timeout(10):
            while ((await rig.browser_stats()) or {}).get("audioPackets", 0) <= 10:
                await asyncio.sleep(0.05)
        await expect(rig.page.locator("#call-timer")).not_to_have_text("00:00", timeout=5000)

        await rig.page.get_by_role("button", name="Raccrocher").click()
        await rig.wait_idle()
        assert rig.appliance.hardware.light.pattern is LightPattern.IDLE

        await connect_call(rig)  # a second call, ended at the counter by a long press
        await rig.long_press()
        await rig.wait_idle()
        await expect(rig.page.locator("#notice")).to_be_visible()

        await wait_for(lambda: len(call_reasons(rig)) == 2, "two calls logged")
        assert call_reasons(rig) == ["hangup_agent", "hangup_counter"]
        await wait_for(
            lambda: call_event_kinds(rig).count("call_ended") == 2, "call events over MQTT"
        )
        assert call_event_kinds(rig).count("call_started") == 2
        # Each call's quality summary, measured by the counter, is on its row and its line
        # on the call log (issue 19, item 7).
        await wait_for(
            lambda: all(kbps for kbps, _ in call_quality(rig)), "quality summaries on the calls"
        )
        assert all(measured and measured > 0 for _, measured in call_quality(rig))
        await rig.page.goto(rig.live.url + "/calls")
        await expect(rig.page.locator("#calls .quality")).to_have_count(2)
        await expect(rig.page.locator("#calls .quality").first).to_contain_text("kbit/s")


def call_quality(rig: CallRig) -> list[tuple[float | None, float | None]]:
    """Each call's (average video bitrate sent, measured time), oldest first."""
    with rig.live.sessions() as session:
        rows = session.scalars(select(CallRecord).order_by(CallRecord.requested_at)).all()
        return [(row.video_kbps_avg, row.measured_s) for row in rows]


def set_loopback(up: bool) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up" if up else "down"], check=True)


async def test_media_cut_for_five_seconds_comes_back_without_a_press(tmp_path: Path) -> None:
    async with call_rig(tmp_path) as rig:
        await connect_call(rig)
        set_loopback(False)
        try:
            await asyncio.sleep(CUT_S)  # the outage itself, not a wait for something
        finally:
            set_loopback(True)
        before_browser = ((await rig.browser_stats()) or {})["framesDecoded"]
        before_screen = rig.screen.frames
        await rig.wait_browser_frames(before_browser + FRAMES, timeout_s=40)
        await wait_for(lambda: rig.screen.frames > before_screen + FRAMES, "frames back", 40)
        assert rig.phase is Phase.IN_CALL
        assert call_reasons(rig) == [None]  # still the same, unfinished call


async def test_nobody_answers_the_call_is_missed(tmp_path: Path) -> None:
    async with call_rig(tmp_path, ring_timeout_s=3.0) as rig:
        rig.press()
        await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
        await expect(rig.page.locator("#queue li")).to_have_count(1, timeout=10_000)
        await wait_for(
            lambda: ScreenState.MISSED in [shown.state for shown in rig.screen.history],
            "missed screen",
        )
        await rig.wait_idle()
        assert call_reasons(rig) == ["missed"]
        await expect(rig.page.locator("#missed-today")).to_have_text("1")
        await expect(rig.page.locator("#queue li")).to_have_count(0)


async def test_pre_encoded_h264_is_sent_as_is_and_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiortc.codecs import h264

    encodes = 0
    original = h264.H264Encoder.encode

    def counting_encode(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal encodes
        encodes += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h264.H264Encoder, "encode", counting_encode)
    async with call_rig(tmp_path, camera_encoding="h264") as rig:
        await connect_call(rig)
        stats = await rig.wait_browser_frames(FRAMES * 2)
        assert stats["videoCodec"] == "video/H264"
        assert encodes == 0
