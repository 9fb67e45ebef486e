"""A test call's figures from two samples of the answerer's stats (pure arithmetic), and
how they are said in French."""

from __future__ import annotations

import time

from fleet_server.calls.answerer import RTT_POLL_S, measuring_window
from fleet_server.calls.line_figures import Sample, describe, figures


def sample(
    at_s: float,
    received: int,
    sent: int,
    *,
    up: tuple[int, int] = (0, 0),  # packets received, lost
    down: tuple[int, int] = (0, 0),
    rtt_s: tuple[float, ...] = (),
) -> Sample:
    return Sample(
        at_s=at_s,
        bytes_received=received,
        bytes_sent=sent,
        up_packets_received=up[0],
        up_packets_lost=up[1],
        down_packets_received=down[0],
        down_packets_lost=down[1],
        rtt_s=list(rtt_s),
    )


def test_bitrates_over_the_window_losses_and_round_trip_as_of_its_end() -> None:
    before = sample(100.0, received=50_000, sent=20_000)
    after = sample(
        110.0,
        received=50_000 + 1_225_000,  # 9 800 kbit in 10 s
        sent=20_000 + 762_500,
        up=(995, 5),
        down=(750, 250),
        rtt_s=(0.040, 0.044),
    )
    assert figures(before, after) == {
        "rtt_ms": 42.0,
        "up_kbps": 980.0,
        "down_kbps": 610.0,
        "up_loss_pct": 0.5,
        "down_loss_pct": 25.0,
        "measured_s": 10.0,
    }


def test_what_was_not_measured_is_none_and_said_as_a_dash() -> None:
    measured = figures(sample(0.0, 0, 0), sample(2.0, 0, 0))
    assert measured["rtt_ms"] is None  # no receiver report, no round trip
    assert measured["down_loss_pct"] is None
    assert measured["up_kbps"] == 0.0
    said = describe(measured)
    assert said.startswith("Aller-retour : —, Débit montant : 0 kbit/s")


def test_figures_are_said_in_french() -> None:
    said = describe({"rtt_ms": 5.9, "up_kbps": 1234.4, "down_loss_pct": 1.3})
    assert "Aller-retour : 5,9 ms" in said
    assert "Débit montant : 1\u202f234 kbit/s" in said
    assert "Pertes descendantes : 1,3 %" in said


class _Stats:
    """Readings whose round trip appears only from the ``rtt_from``-th one on."""

    def __init__(self, rtt_from: int) -> None:
        self.rtt_from, self.taken = rtt_from, 0

    async def __call__(self) -> Sample:
        self.taken += 1
        rtt = (0.04,) if self.taken >= self.rtt_from else ()
        return sample(time.monotonic(), 1000 * self.taken, 1000 * self.taken, rtt_s=rtt)


async def test_the_window_stretches_until_a_receiver_report_gives_the_round_trip() -> None:
    stats = _Stats(rtt_from=5)  # 2 samples for the window, then 3 polls before the report
    before, after = await measuring_window(stats, 0.05, rtt_grace_s=5.0)
    assert stats.taken == 5
    assert after.rtt_s == [0.04]
    assert after.at_s - before.at_s >= 0.05 + 2 * RTT_POLL_S
    assert figures(before, after)["rtt_ms"] == 40


async def test_the_window_is_not_stretched_once_the_round_trip_is_known() -> None:
    stats = _Stats(rtt_from=1)
    await measuring_window(stats, 0.05, rtt_grace_s=5.0)
    assert stats.taken == 2


async def test_the_stretch_is_bounded_and_the_round_trip_then_not_measured() -> None:
    stats = _Stats(rtt_from=10_000)
    before, after = await measuring_window(stats, 0.05, rtt_grace_s=0.6)
    assert 2 < stats.taken < 10
    assert 0.6 <= after.at_s - before.at_s - 0.05 < 0.6 + 2 * RTT_POLL_S
    assert figures(before, after)["rtt_ms"] is None
