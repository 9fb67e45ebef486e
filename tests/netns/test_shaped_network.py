"""The shaped test network itself, measured: the counter behind NAT, the line's rate, delay
and loss per direction as its profile says, UDP blocked on ``udp-bloque`` while TCP passes,
the rate changed live, and a cut line that comes back.

Figures are asserted with tolerances: they are the line's, not our code's timings.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.shaped import measure
from tests.support.shaped.network import ShapedNetwork, shaped_network
from tests.support.shaped.profiles import ADSL, MAUVAIS_JOUR, Profile, Step

pytestmark = pytest.mark.slow

RATE_TOLERANCE = 0.12  # measured rate within ±12 % of the profile's
DELAY_TOLERANCE_MS = 4.0  # median one-way delay within this plus half the jitter of the
# profile's (100 delays: the median's own spread is about jitter/10; seen: +7.5 ms on
# mauvais-jour's ± 20 ms with 50 delays and the machine's load average at 8)
TIMER_SLACK_MS = 6.0  # the stage's sleep and the receiver's wake-up, beyond ± jitter
# Not the maximum: on this shared 2-core machine a busy neighbour stalls a packet now and then
# by tens of milliseconds (seen: one of 50 at +47 ms). Nine in ten must be in the range.
IN_RANGE_SHARE = 0.9


def assert_rate(measured_kbit: float, expected_kbit: int | None) -> None:
    assert expected_kbit is not None
    low, high = expected_kbit * (1 - RATE_TOLERANCE), expected_kbit * (1 + RATE_TOLERANCE)
    assert low <= measured_kbit <= high, f"{measured_kbit:.0f} kbit/s, expected {expected_kbit}"


def assert_delays(flow: measure.Flow, delay_ms: float, jitter_ms: float) -> None:
    assert flow.received > 0.8 * flow.sent
    tolerance = DELAY_TOLERANCE_MS + jitter_ms / 2
    assert abs(flow.median_delay_ms - delay_ms) <= tolerance, flow.median_delay_ms
    assert min(flow.delays_ms) >= delay_ms - jitter_ms - 1.0
    in_range = [d for d in flow.delays_ms if d <= delay_ms + jitter_ms + TIMER_SLACK_MS]
    assert len(in_range) >= IN_RANGE_SHARE * len(flow.delays_ms), sorted(flow.delays_ms)


def assert_loss(flow: measure.Flow, loss_pct: float) -> None:
    # About 20 packets expected lost (± 4.5 at one sigma): these bounds are beyond 3 sigma.
    assert flow.sent >= 0.9 * measure.LOST_EXPECTED * 100 / loss_pct
    assert loss_pct / 4 <= flow.loss_pct <= loss_pct * 2.2, f"{flow.loss_pct:.2f} % lost"


@pytest.mark.parametrize("profile", [ADSL, MAUVAIS_JOUR], ids=lambda p: p.name)
def test_profile_shapes_rate_delay_and_loss_each_way(profile: Profile) -> None:
    with shaped_network(profile) as network:
        # The office sees the router's address, never the counter's own: it is behind NAT.
        assert measure.counter_source_address(network) == network.counter_public_address
        figures = measure.measure(network, seconds=2.5)
    assert_rate(figures.up_kbit, profile.up.rate_kbit)
    assert_rate(figures.down_kbit, profile.down.rate_kbit)
    assert_delays(figures.up_delay, profile.up.delay_ms, profile.up.jitter_ms)
    assert_delays(figures.down_delay, profile.down.delay_ms, profile.down.jitter_ms)
    assert_loss(figures.up_loss, profile.up.loss_pct)
    assert_loss(figures.down_loss, profile.down.loss_pct)


def test_udp_bloque_drops_udp_both_ways_and_lets_tcp_through() -> None:
    with shaped_network("udp-bloque") as network:
        up = measure.udp_flow(network, up=True, kbit=100, seconds=0.5, size=100)
        assert up.sent > 20
        assert up.received == 0
        assert measure.tcp_connects(network)
        network.apply("adsl")  # the same line with UDP allowed
        assert measure.udp_flow(network, up=True, kbit=100, seconds=0.5, size=100).received > 0


def test_the_line_cut_blocks_everything_and_comes_back() -> None:
    with shaped_network("adsl") as network:
        assert measure.tcp_connects(network)
        network.link_down()
        assert not measure.tcp_connects(network, timeout_s=1.0)
        assert measure.udp_flow(network, up=True, kbit=100, seconds=0.5, size=100).received == 0
        network.link_up()
        assert measure.tcp_connects(network)
        assert measure.udp_flow(network, up=True, kbit=100, seconds=0.5, size=100).received > 0


def test_uplink_rate_changes_live_and_the_schedule_restores_it() -> None:
    with shaped_network("coupure") as network:
        network.set_uplink_rate(300)
        flow = measure.udp_flow(network, up=True, kbit=600, seconds=2.5)
        assert_rate(flow.wire_kbit, 300)

        # A schedule plays its steps, then the profile's own rate is back.
        seen: list[int | None] = []

        async def play() -> None:
            watching = asyncio.create_task(_watch_rate(network, seen))
            await network.play_schedule((Step(0.0, 200), Step(0.2, 400)))
            watching.cancel()

        asyncio.run(play())
        assert 200 in seen
        assert network.profile.up.rate_kbit == ADSL.up.rate_kbit
        flow = measure.udp_flow(network, up=True, kbit=1500, seconds=2.5)
        assert_rate(flow.wire_kbit, ADSL.up.rate_kbit)


async def _watch_rate(network: ShapedNetwork, seen: list[int | None]) -> None:
    while True:
        seen.append(network.profile.up.rate_kbit)
        await asyncio.sleep(0.01)
