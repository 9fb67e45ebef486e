"""The video ladder's climber, on a hand-driven clock: down at once on congestion, up after
calm, barred rungs not retried too soon, the voice's share always kept."""

from __future__ import annotations

import itertools

import pytest

from appliance.call import adaptation
from appliance.call.adaptation import (
    AUDIO_RESERVE_BPS,
    LADDER,
    RungClimber,
    consumption_bps,
    ladder_for,
)
from appliance.hw.ports import VideoRung


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(rungs: list[VideoRung]) -> list[str]:
    return [r.name for r in rungs]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def climber(clock: Clock, ladder: list[VideoRung] | None = None) -> tuple[RungClimber, list[str]]:
    changes: list[str] = []
    made = RungClimber(
        ladder or list(LADDER), on_change=lambda rung: changes.append(rung.name), clock=clock
    )
    return made, changes


def test_the_ladder_never_asks_a_camera_for_more_than_it_was_built_for() -> None:
    assert names(ladder_for((640, 360), 30)) == ["360p30", "360p20", "360p15", "270p15", "180p10"]
    assert names(ladder_for((1280, 720), 15))[0] == "360p15"
    assert names(ladder_for((160, 120), 5)) == ["180p10"]  # nothing fits: the lowest rung


def test_every_rung_costs_less_than_the_one_above_and_leaves_room_for_the_voice() -> None:
    costs = [consumption_bps(r) for r in LADDER]
    assert costs == sorted(costs, reverse=True)
    assert all(c - r.bitrate_bps == AUDIO_RESERVE_BPS for c, r in zip(costs, LADDER, strict=True))
    ratios = [a.bitrate_bps / b.bitrate_bps for a, b in itertools.pairwise(LADDER)]
    assert max(ratios) < 1.6  # one step up is a probe a line absorbs, not a leap


def test_it_starts_at_the_best_rung_within_the_start_budget(clock: Clock) -> None:
    made, changes = climber(clock)
    assert consumption_bps(made.rung) <= adaptation.START_BPS
    assert consumption_bps(LADDER[LADDER.index(made.rung) - 1]) > adaptation.START_BPS
    assert changes == []


def test_a_falling_remb_steps_down_at_once_to_what_fits(clock: Clock) -> None:
    made, changes = climber(clock)
    start = made.rung
    made.remb(600_000)
    clock.now += 1.5
    made.remb(300_000)  # Chromium saw the queue grow
    assert made.rung.bitrate_bps + AUDIO_RESERVE_BPS <= 300_000 * adaptation.REMB_HEADROOM
    assert changes == [made.rung.name]
    assert made.rung != start
    assert made.steps == 1
    assert made.lowest == made.rung


def test_a_remb_that_falls_far_above_what_we_send_is_not_congestion(clock: Clock) -> None:
    made, changes = climber(clock)
    made.remb(5_000_000)
    made.remb(4_000_000)
    assert changes == []


def test_random_loss_of_a_rural_line_is_not_congestion_but_heavy_loss_is(clock: Clock) -> None:
    made, changes = climber(clock)
    clock.now += 1.5
    made.loss(0.03)
    assert changes == []
    made.loss(0.25)
    assert len(changes) == 1


def test_a_growing_round_trip_is_congestion(clock: Clock) -> None:
    made, changes = climber(clock)
    clock.now += 1.5
    made.round_trip(0.12)
    made.round_trip(0.20)
    assert changes == []
    made.round_trip(0.12 + adaptation.QUEUE_DELAY_S + 0.05)
    assert len(changes) == 1


def test_it_climbs_one_rung_after_calm_and_not_before(clock: Clock) -> None:
    made, changes = climber(clock)
    start = LADDER.index(made.rung)
    clock.now += adaptation.CLIMB_AFTER_S * 2
    made.loss(0.0)
    assert changes == []  # new ground, and no estimate from the receiver yet
    made.remb(5_000_000)  # calm for long, and room: one rung up at once
    assert changes == [LADDER[start - 1].name]
    clock.now += adaptation.CLIMB_AFTER_S - 0.1
    made.loss(0.0)
    assert len(changes) == 1  # the climb itself restarts the wait
    clock.now += 0.2
    made.loss(0.0)
    assert changes == [LADDER[start - 1].name, LADDER[start - 2].name]


def climb_once(made: RungClimber, clock: Clock) -> None:
    clock.now += adaptation.CLIMB_AFTER_S + 0.1
    made.loss(0.0)


def congest(made: RungClimber, clock: Clock) -> None:
    clock.now += adaptation.DOWN_SPACING_S + 0.1
    made.loss(0.5)


def calm_for(made: RungClimber, clock: Clock, seconds: float) -> None:
    for _ in range(round(seconds / 0.5)):
        clock.now += 0.5
        made.loss(0.0)


def test_new_ground_that_fails_is_barred_longer_each_time(clock: Clock) -> None:
    made, _ = climber(clock)
    made.remb(5_000_000)
    start = made.rung
    climb_once(made, clock)
    above = made.rung
    assert above != start  # above the rung the line has held: new ground
    congest(made, clock)
    assert made.rung == start
    calm_for(made, clock, adaptation.BAR_S - 0.5)
    assert made.rung == start  # barred
    calm_for(made, clock, 1.0)
    assert made.rung == above  # the bar is over: tried again
    congest(made, clock)  # …and it fails again: barred twice as long
    calm_for(made, clock, adaptation.BAR_S + 1)
    assert made.rung == start
    calm_for(made, clock, adaptation.BAR_S)
    assert made.rung == above


def test_back_to_a_held_rung_without_waiting_for_the_remb(clock: Clock) -> None:
    """After a cut Chromium's estimate stays low for tens of seconds: a rung the line held
    before is climbed back to on calm alone, each bar no longer than ``BAR_S``."""
    made, _ = climber(clock)
    above = LADDER[LADDER.index(made.rung) - 1]
    made.remb(consumption_bps(above))  # room for one rung more, not two
    calm_for(made, clock, adaptation.CLIMB_AFTER_S + adaptation.HELD_S + 0.5)
    held = made.rung
    assert held == above
    made.remb(150_000)  # the cut: Chromium's estimate collapses, and stays there
    assert made.rung.bitrate_bps < held.bitrate_bps
    congest(made, clock)
    congest(made, clock)
    bottom = made.rung
    assert bottom == LADDER[-1]
    calm_for(made, clock, 30)  # the line is back; the REMB is not
    assert made.rung == held


def test_new_ground_waits_for_the_remb(clock: Clock) -> None:
    made, _ = climber(clock)
    start = made.rung
    made.remb(consumption_bps(start))  # the receiver wants no more than we send
    calm_for(made, clock, 10)
    assert made.rung == start
    above = LADDER[LADDER.index(start) - 1]
    made.remb(int(consumption_bps(above) * adaptation.REMB_CLIMB) + 1)
    calm_for(made, clock, adaptation.CLIMB_AFTER_S + 0.5)
    assert made.rung == above


def test_a_held_rung_that_keeps_failing_is_no_longer_held(clock: Clock) -> None:
    made, _ = climber(clock)
    start = made.rung
    made.remb(consumption_bps(start))  # no room above
    for _ in range(adaptation.HELD_FAILURES):
        assert made.rung == start
        congest(made, clock)
        calm_for(made, clock, adaptation.BAR_S + adaptation.RECLIMB_AFTER_S + 0.5)
    assert made.rung != start  # now new ground: its bar doubles
    calm_for(made, clock, adaptation.BAR_S * 2)
    assert made.rung == start


def test_two_congestion_signals_in_a_burst_step_down_once(clock: Clock) -> None:
    made, changes = climber(clock)
    clock.now += 1.5
    made.loss(0.5)
    made.loss(0.5)
    made.round_trip(0.1)
    made.round_trip(0.9)
    assert len(changes) == 1
    clock.now += adaptation.DOWN_SPACING_S + 0.1
    made.loss(0.5)  # still congested a second later: down again
    assert len(changes) == 2


def test_at_the_bottom_it_stays_and_the_voice_keeps_its_share(clock: Clock) -> None:
    bottom = [LADDER[-2], LADDER[-1]]
    made, changes = climber(clock, bottom)
    for _ in range(5):
        clock.now += 1.5
        made.loss(0.9)
    assert made.rung == LADDER[-1]
    assert changes == [LADDER[-1].name]


def test_an_empty_ladder_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        RungClimber([], on_change=lambda rung: None)


def test_a_climb_that_congests_the_line_is_undone_at_once(clock: Clock) -> None:
    made, changes = climber(clock)
    made.remb(5_000_000)
    start = made.rung
    clock.now += adaptation.CLIMB_AFTER_S + 0.1
    made.loss(0.0)
    assert made.rung != start
    clock.now += 0.3
    made.loss(0.4)  # the rung above was too much
    assert made.rung == start
    assert len(changes) == 2


def test_losses_are_judged_over_a_second_from_the_running_counts() -> None:
    from appliance.call.feedback import LossWindow

    clock = Clock()
    window = LossWindow(clock=clock)
    assert window.update(1000, 0) is None  # opens the window
    clock.now += 0.3
    assert window.update(1030, 20) is None  # a burst in a compound RTCP: not judged alone
    clock.now += 0.8
    assert window.update(1100, 20) == pytest.approx(0.2)
    clock.now += 1.1
    assert window.update(1200, 20) == 0.0
    clock.now += 1.1
    assert window.update(10, 0) is None  # the counts restarted (a new connection)


def test_a_document_crossing_the_line_gets_room_then_the_video_climbs_back(
    clock: Clock,
) -> None:
    made, changes = climber(clock)
    above = LADDER[LADDER.index(made.rung) - 1]
    made.remb(consumption_bps(above))
    calm_for(made, clock, adaptation.CLIMB_AFTER_S + adaptation.HELD_S + 0.5)
    held = made.rung
    assert held == above
    made.make_room(True)
    assert consumption_bps(made.rung) <= adaptation.DOCUMENT_ROOM_BPS
    calm_for(made, clock, 10)
    assert consumption_bps(made.rung) <= adaptation.DOCUMENT_ROOM_BPS  # no climb meanwhile
    made.make_room(False)
    steps = LADDER.index(made.rung) - LADDER.index(held)
    calm_for(made, clock, steps * adaptation.RECLIMB_AFTER_S + 1)  # no bar: nothing failed
    assert made.rung == held
    assert len(changes) == 1 + 1 + steps
