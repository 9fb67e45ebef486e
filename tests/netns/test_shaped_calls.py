"""Calls through the shaped test network: the counter behind NAT on a rural line, the fleet
server, Mosquitto and the agent's Chromium in the office (``tests/support/shaped``).

- on ``adsl``: press → Répondre → frames both ways → the agent hangs up; every socket of the
  counter (signalling, MQTT, ICE) is in its namespace and reaches the office through NAT;
- on ``mauvais-jour`` and ``coupure`` (its uplink falling to 300 kbit/s mid-call): the call
  connects and media flows;
- on ``adsl``, the counter's line cut for 10 s mid-call: frames flow again after it comes
  back, without a press (issue 19, item 6: within 3 s is the goal; the time is logged, the
  assertion is generous, as in ``test_calls.py``'s 5-s cut).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from appliance.call.machine import Phase
from appliance.hw.ports import ScreenState
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.shaped import measure
from tests.support.shaped.profiles import COUPURE, CUT_KBIT, Step

pytestmark = [pytest.mark.browser, pytest.mark.slow]

logger = logging.getLogger(__name__)

FRAMES = 15  # decoded frames that prove video flows
SHAPED_WAIT_S = 30.0  # connecting through 120-300 ms of round trip and a lossy line
CUT_S = 10.0  # issue 19, item 6
BACK_WITHIN_S = 40.0  # generous: the goal (3 s) is measured and logged, not asserted here


async def connect_call(rig: CallRig) -> None:
    """Press, answer, and wait for media both ways."""
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued", SHAPED_WAIT_S)
    await rig.answer()
    await rig.wait_browser_frames(FRAMES, timeout_s=SHAPED_WAIT_S)
    await wait_for(
        lambda: rig.screen.frames > FRAMES, "agent's video on the counter", SHAPED_WAIT_S
    )
    assert rig.phase is Phase.IN_CALL


def counter_host_candidates(rig: CallRig) -> set[str]:
    peer: Any = rig.agent.peer
    pc: Any = peer._pc
    addresses: set[str] = set()
    for transceiver in pc.getTransceivers():
        ice = transceiver.sender.transport.transport
        addresses |= {c.ip for c in ice.iceGatherer.getLocalCandidates() if c.type == "host"}
    return addresses


async def test_adsl_call_connects_through_nat_and_hangs_up(tmp_path: Path) -> None:
    async with call_rig(tmp_path, network="adsl") as rig:
        network = rig.network
        assert network is not None
        assert rig.broker is not None
        # Signalling and MQTT: the office sees the router's address only (NAT); the server's
        # ingest and the browser are on 127.0.0.1.
        public = {network.counter_public_address}
        assert measure.office_peers(rig.live.port) - {"127.0.0.1"} == public
        assert measure.office_peers(rig.broker.port) - {"127.0.0.1"} == public

        started = time.monotonic()
        await connect_call(rig)
        logger.info("adsl: press to frames both ways in %.1f s", time.monotonic() - started)
        assert rig.screen.state is ScreenState.IN_CALL
        # ICE gathered in the counter's namespace; the browser reached it through NAT.
        assert counter_host_candidates(rig) == {network.counter_address}
        pair = await rig.selected_pair()
        assert pair is not None
        assert pair["remoteAddress"] in (None, network.counter_public_address)

        await rig.page.get_by_role("button", name="Raccrocher").click()
        await rig.wait_idle()
        await expect(rig.page.locator("#call")).to_be_hidden()


async def test_mauvais_jour_call_connects_and_media_flows(tmp_path: Path) -> None:
    async with call_rig(tmp_path, network="mauvais-jour") as rig:
        await connect_call(rig)
        before = ((await rig.browser_stats()) or {})["framesDecoded"]
        await rig.wait_browser_frames(before + FRAMES, timeout_s=SHAPED_WAIT_S)


async def test_coupure_call_keeps_media_while_the_uplink_falls(tmp_path: Path) -> None:
    async with call_rig(tmp_path, network="coupure") as rig:
        network = rig.network
        assert network is not None
        await connect_call(rig)
        # The schedule from its fall: 300 kbit/s for its length, then the ADSL rate again.
        fall_s = COUPURE.schedule[0].at_s
        schedule = [Step(step.at_s - fall_s, step.uplink_kbit) for step in COUPURE.schedule]
        playing = asyncio.create_task(network.play_schedule(schedule))
        try:
            await wait_for(lambda: network.profile.up.rate_kbit == CUT_KBIT, "uplink fallen", 5)
            before = ((await rig.browser_stats()) or {})["framesDecoded"]
            await rig.wait_browser_frames(before + FRAMES, timeout_s=SHAPED_WAIT_S)
            assert rig.phase is Phase.IN_CALL
        finally:
            playing.cancel()
            await asyncio.gather(playing, return_exceptions=True)


async def frames_back(count: Callable[[], Awaitable[int]], since: float) -> tuple[float, float]:
    """Seconds from ``since`` to the first new frame, and to the ``FRAMES``-th."""
    first = None
    async with asyncio.timeout(BACK_WITHIN_S):
        while (seen := await count()) <= FRAMES:
            if seen > 0 and first is None:
                first = time.monotonic() - since
            await asyncio.sleep(0.02)
    done = time.monotonic() - since
    return (done if first is None else first), done


async def test_adsl_line_cut_for_ten_seconds_media_comes_back_without_a_press(
    tmp_path: Path,
) -> None:
    async with call_rig(tmp_path, network="adsl") as rig:
        network = rig.network
        assert network is not None
        await connect_call(rig)
        network.link_down()
        try:
            await asyncio.sleep(CUT_S)  # the outage itself, not a wait for something
        finally:
            network.link_up()
        restored = time.monotonic()
        before_browser = ((await rig.browser_stats()) or {})["framesDecoded"]
        before_screen = rig.screen.frames

        async def browser_frames() -> int:
            return int(((await rig.browser_stats()) or {})["framesDecoded"]) - before_browser

        async def screen_frames() -> int:
            return rig.screen.frames - before_screen

        agent_side, counter_side = await asyncio.gather(
            frames_back(browser_frames, restored), frames_back(screen_frames, restored)
        )
        logger.info(
            "adsl, 10-s cut: after restoration, video back at the agent %.1f s (%d frames: "
            "%.1f s), on the counter's screen %.1f s (%d frames: %.1f s)",
            agent_side[0],
            FRAMES,
            agent_side[1],
            counter_side[0],
            FRAMES,
            counter_side[1],
        )
        assert rig.phase is Phase.IN_CALL
