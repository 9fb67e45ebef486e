"""A rollout's waves, error threshold and state machine (pure; docs/updates.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet_server.errors import RolloutError
from fleet_server.updates.rollout import (
    ROLLOUT_ACTION_LABELS,
    ROLLOUT_STATE_LABELS,
    CounterUpdate,
    Rollout,
    RolloutAction,
    RolloutState,
    Threshold,
    act,
    step,
)
from fleet_server.updates.waves import (
    Canary,
    ChosenDevices,
    ChosenSites,
    Percent,
    Rest,
    Target,
    plan_waves,
)
from guichet.updates import UpdateState

NOW = datetime(2025, 3, 18, 1, 0, tzinfo=UTC)
# Eight counters on three sites, given out of order: waves take them by site, then id.
TARGETS = [
    Target("nontron-02", "Nontron"),
    Target("bandiat-01", "Bandiat"),
    Target("nontron-01", "Nontron"),
    Target("piegut-01", "Piégut"),
    Target("bandiat-02", "Bandiat"),
    Target("piegut-02", "Piégut"),
    Target("piegut-03", "Piégut"),
    Target("nontron-03", "Nontron"),
]
COMMITTED = CounterUpdate(UpdateState.COMMITTED, NOW)
FAILED = CounterUpdate(UpdateState.FAILED, NOW)
ROLLED_BACK = CounterUpdate(UpdateState.ROLLED_BACK, NOW)
DOWNLOADING = CounterUpdate(UpdateState.DOWNLOADING, NOW)


# --- waves ---------------------------------------------------------------------------------


def test_canary_then_a_quarter_then_the_rest() -> None:
    waves = plan_waves(TARGETS, [Canary(1), Percent(25), Rest()])
    assert waves == [
        ("bandiat-01",),
        ("bandiat-02", "nontron-01"),  # 25 % of the eight: two
        ("nontron-02", "nontron-03", "piegut-01", "piegut-02", "piegut-03"),
    ]


def test_every_counter_is_in_one_wave_at_most() -> None:
    waves = plan_waves(
        TARGETS,
        [ChosenDevices(frozenset({"piegut-02"})), ChosenSites(frozenset({"Piégut"})), Percent(50)],
    )
    flat = [d for wave in waves for d in wave]
    assert len(flat) == len(set(flat))
    assert waves[0] == ("piegut-02",)
    assert waves[1] == ("piegut-01", "piegut-03")  # piegut-02 already taken
    assert len(waves[2]) == 4  # half of the eight, among those left
    assert "piegut-02" not in waves[2]


def test_a_wave_that_takes_nobody_is_dropped_and_no_rest_leaves_counters_out() -> None:
    waves = plan_waves(TARGETS, [ChosenSites(frozenset({"Javerlhac"})), Canary(2)])
    assert waves == [("bandiat-01", "bandiat-02")]


def test_a_small_percentage_still_takes_one_counter() -> None:
    assert plan_waves(TARGETS, [Percent(1)]) == [("bandiat-01",)]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "au moins une vague"),
        ([Canary(0)], "au moins un guichet"),
        ([Percent(0)], "pourcentage"),
        ([Percent(120)], "pourcentage"),
        ([ChosenSites(frozenset())], "choisissez"),
        ([Rest(), Canary(1)], "dernière vague"),
    ],
)
def test_a_wave_description_that_cannot_work_is_refused_in_french(
    specs: list[Canary | Percent | ChosenSites | Rest], message: str
) -> None:
    with pytest.raises(RolloutError, match=message):
        plan_waves(TARGETS, specs)


# --- the state machine -----------------------------------------------------------------------


def _started(threshold: Threshold | None = None) -> Rollout:
    waves = tuple(plan_waves(TARGETS, [Canary(1), Percent(25), Rest()]))
    draft = Rollout(waves=waves, threshold=threshold or Threshold())
    return act(draft, RolloutAction.START, NOW)


def test_labels_are_french_and_complete() -> None:
    assert set(ROLLOUT_STATE_LABELS) == set(RolloutState)
    assert set(ROLLOUT_ACTION_LABELS) == set(RolloutAction)


def test_pause_resume_cancel() -> None:
    running = _started()
    assert running.state is RolloutState.RUNNING
    paused = act(running, RolloutAction.PAUSE, NOW)
    assert paused.state is RolloutState.PAUSED
    assert step(paused, {}, NOW).to_order == ()  # no new order while paused
    resumed = act(paused, RolloutAction.RESUME, NOW)
    assert resumed.state is RolloutState.RUNNING
    cancelled = act(resumed, RolloutAction.CANCEL, NOW)
    assert cancelled.state is RolloutState.CANCELLED
    with pytest.raises(RolloutError, match="annulé"):
        act(cancelled, RolloutAction.RESUME, NOW)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (RolloutState.DRAFT, RolloutAction.PAUSE),
        (RolloutState.RUNNING, RolloutAction.START),
        (RolloutState.RUNNING, RolloutAction.RESUME),
        (RolloutState.COMPLETED, RolloutAction.CANCEL),
        (RolloutState.CANCELLED, RolloutAction.START),
    ],
)
def test_an_action_the_state_does_not_allow_is_refused(
    state: RolloutState, action: RolloutAction
) -> None:
    with pytest.raises(RolloutError, match="impossible"):
        act(Rollout(waves=(("bandiat-01",),), state=state), action, NOW)


def test_a_rollout_with_nobody_to_update_cannot_start() -> None:
    with pytest.raises(RolloutError, match="Aucun guichet"):
        act(Rollout(waves=()), RolloutAction.START, NOW)


# --- stepping: orders, waves advancing, the threshold ----------------------------------------


def test_the_first_wave_is_ordered_and_the_next_waits_for_its_commit() -> None:
    rollout = _started()
    first = step(rollout, {}, NOW)
    assert first.to_order == ("bandiat-01",)
    assert not first.wave_advanced
    waiting = step(rollout, {"bandiat-01": DOWNLOADING}, NOW + timedelta(hours=1))
    assert waiting.to_order == ()  # ordered already; the next wave is not started
    assert waiting.rollout.current_wave == 0
    later = NOW + timedelta(hours=2)
    advanced = step(rollout, {"bandiat-01": COMMITTED}, later)
    assert advanced.wave_advanced
    assert advanced.rollout.current_wave == 1
    assert advanced.rollout.wave_started_at == later
    assert advanced.to_order == ("bandiat-02", "nontron-01")


def test_a_wave_past_its_timeout_does_not_hold_the_rest() -> None:
    rollout = _started()
    stuck = {"bandiat-01": DOWNLOADING}  # never reached the end: e.g. open every day
    before = step(rollout, stuck, NOW + rollout.wave_timeout - timedelta(seconds=1))
    assert before.rollout.current_wave == 0
    after = step(rollout, stuck, NOW + rollout.wave_timeout)
    assert after.rollout.current_wave == 1


def test_the_last_wave_finished_completes_the_rollout() -> None:
    rollout = _started()
    everyone = {d: COMMITTED for wave in rollout.waves for d in wave}
    for _ in rollout.waves:
        rollout = step(rollout, everyone, NOW).rollout
    assert rollout.state is RolloutState.COMPLETED
    assert rollout.reason == "Terminé : 8 guichet(s) à jour sur 8."


def test_one_failed_canary_stops_the_rollout_by_default() -> None:
    stopped = step(_started(), {"bandiat-01": ROLLED_BACK}, NOW).rollout
    assert stopped.state is RolloutState.STOPPED
    assert stopped.reason is not None
    assert "1 guichet(s) en échec sur 1 dans la vague 1" in stopped.reason
    assert step(stopped, {}, NOW).to_order == ()


def test_a_percentage_threshold_counts_the_current_wave() -> None:
    threshold = Threshold(max_failures=None, max_failure_pct=40)
    rollout = step(_started(threshold), {"bandiat-01": COMMITTED}, NOW).rollout
    rollout = step(rollout, {"bandiat-02": COMMITTED, "nontron-01": COMMITTED}, NOW).rollout
    assert rollout.current_wave == 2  # five counters: 40 % is two
    last = rollout.waves[2]
    one = step(rollout, {last[0]: FAILED}, NOW)
    assert one.rollout.state is RolloutState.RUNNING
    assert one.to_order == last[1:]
    two = step(rollout, {last[0]: FAILED, last[1]: ROLLED_BACK}, NOW)
    assert two.rollout.state is RolloutState.STOPPED


def test_after_a_resume_only_new_failures_count() -> None:
    stopped = step(_started(), {"bandiat-01": ROLLED_BACK}, NOW).rollout
    later = NOW + timedelta(hours=1)
    resumed = act(stopped, RolloutAction.RESUME, later)
    assert resumed.state is RolloutState.RUNNING
    assert resumed.reason is None
    # The canary's failure is before the resume: the wave is finished, the next one starts.
    moved = step(resumed, {"bandiat-01": ROLLED_BACK}, later)
    assert moved.rollout.state is RolloutState.RUNNING
    assert moved.rollout.current_wave == 1
    fresh = CounterUpdate(UpdateState.FAILED, later + timedelta(minutes=5))
    again = step(moved.rollout, {"bandiat-02": fresh}, later + timedelta(minutes=5))
    assert again.rollout.state is RolloutState.STOPPED


@pytest.mark.parametrize(
    ("threshold", "failures", "size", "reached"),
    [
        (Threshold(max_failures=2), 1, 10, False),
        (Threshold(max_failures=2), 2, 10, True),
        (Threshold(max_failures=None, max_failure_pct=10), 2, 25, False),  # 8 %
        (Threshold(max_failures=None, max_failure_pct=10), 3, 25, True),  # 12 %
        (Threshold(max_failures=None, max_failure_pct=10), 1, 10, True),  # exactly 10 %
        (Threshold(max_failures=None, max_failure_pct=None), 9, 10, False),  # no threshold
        (Threshold(max_failures=5, max_failure_pct=50), 2, 4, True),  # either bound
    ],
)
def test_threshold_bounds(threshold: Threshold, failures: int, size: int, reached: bool) -> None:
    assert threshold.reached(failures, size) is reached


@pytest.mark.parametrize(("failures", "pct"), [(0, None), (None, 0), (None, 150)])
def test_a_threshold_that_cannot_work_is_refused(failures: int | None, pct: float | None) -> None:
    with pytest.raises(RolloutError, match="seuil"):
        Threshold(max_failures=failures, max_failure_pct=pct)
