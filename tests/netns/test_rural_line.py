"""The call on a poor line, with the video following it (issue 19): through the shaped test
network (``tests/support/shaped``), the real counter behind NAT, the real Chromium agent.

- on ``mauvais-jour`` (512 kbit/s up, 150 ms, 3 % loss), the counter sending its pre-encoded
  H.264 at a fixed 1.5 Mbit/s (adaptation off, as before issue 19) sends far more than the
  line carries; with adaptation, what it sends falls below the line's capacity and the
  agent's video goes on;
- on ``udp-bloque`` (no UDP from the counter at all), the call connects through a real coturn
  in the office, the counter reaching it over TCP with the call's own credentials.

Outcomes are asserted (bytes the counter sent, the pair ICE chose), not timings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.call.adaptation import consumption_bps
from appliance.call.machine import Phase
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.coturn import coturn
from tests.support.shaped.network import shaped_network
from tests.support.shaped.profiles import MAUVAIS_JOUR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

logger = logging.getLogger(__name__)

FRAMES = 15
SHAPED_WAIT_S = 30.0
SETTLE_S = 30.0  # the climber's steps down take a second or two each
WINDOW_S = 6.0  # what the counter sent is measured over this long


async def connect_call(rig: CallRig, *, frames: int = FRAMES) -> None:
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued", SHAPED_WAIT_S)
    await rig.answer()
    await wait_for(lambda: rig.phase is Phase.IN_CALL, "media connected", SHAPED_WAIT_S)
    if frames:
        await rig.wait_browser_frames(frames, timeout_s=SHAPED_WAIT_S)


async def bytes_sent(rig: CallRig) -> int:
    """Video and voice bytes the counter's sender put on the line so far."""

    async def read() -> int:
        peer: Any = rig.agent.peer
        report = await peer._pc.getStats()
        return sum(
            int(s.bytesSent) for s in report.values() if getattr(s, "type", "") == "outbound-rtp"
        )

    return await rig.on_counter(read())


async def sent_kbps(rig: CallRig) -> float:
    before, started = await bytes_sent(rig), time.monotonic()
    await asyncio.sleep(WINDOW_S)  # a measuring window, not a wait for something
    return (await bytes_sent(rig) - before) * 8 / 1000 / (time.monotonic() - started)


async def test_on_a_bad_day_the_video_sends_less_than_the_line_carries(tmp_path: Path) -> None:
    capacity = MAUVAIS_JOUR.up.rate_kbit
    assert capacity is not None
    async with call_rig(
        tmp_path / "fixed", network="mauvais-jour", camera_encoding="h264", adaptation=False
    ) as rig:
        await connect_call(rig, frames=0)  # at 2 frames a second or fewer: not waited for
        fixed = await sent_kbps(rig)
    assert fixed > capacity * 1.5  # what the counter sent before issue 19: dropped on the line

    async with call_rig(
        tmp_path / "adaptive", network="mauvais-jour", camera_encoding="h264"
    ) as rig:
        await connect_call(rig)
        peer = rig.agent.peer
        assert peer is not None
        climber = peer.climber
        assert climber is not None
        await wait_for(
            lambda: consumption_bps(climber.rung) < capacity * 1000, "a rung that fits", SETTLE_S
        )
        adaptive = await sent_kbps(rig)
        before = ((await rig.browser_stats()) or {})["framesDecoded"]
        await rig.wait_browser_frames(before + FRAMES, timeout_s=SHAPED_WAIT_S)
    logger.info("mauvais-jour: sent %.0f kbit/s fixed, %.0f adaptive", fixed, adaptive)
    assert adaptive < capacity, f"sent {adaptive:.0f} kbit/s on a {capacity} kbit/s line"


async def test_with_udp_blocked_the_call_goes_through_the_relay(tmp_path: Path) -> None:
    with (
        shaped_network("udp-bloque") as network,
        coturn(tmp_path / "turn", host=network.office_address) as turn,
    ):
        settings = turn.server_settings(("tcp", "udp"))
        async with call_rig(tmp_path / "rig", network=network, **settings) as rig:
            await connect_call(rig)
            pair = await rig.selected_pair()
            assert pair is not None
            assert pair["remoteType"] == "relay"  # the counter's side: its TURN allocation
            await wait_for(lambda: rig.screen.frames > FRAMES, "agent's video at the counter")
    assert ".counter" in turn.log()  # the counter allocated with its call's credentials
