"""A rollout's life, pure: its state machine (start, pause, resume, cancel; stopped by its error
threshold; completed), and :func:`step`, what to do next from what each counter reported.

The runner (to come, docs/updates.md) calls :func:`step` periodically and after each progress
message, saves what it returns, and sends the ``update`` order to the counters of
``Step.to_order`` whose maintenance window is open now (``windows.install_allowed``). Nothing
here reads a clock, a database or the broker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from fleet_server.errors import RolloutError
from fleet_server.updates.waves import Wave
from guichet.updates import FAILURES, TERMINAL, UpdateState

DEFAULT_WAVE_TIMEOUT = timedelta(days=3)  # a counter never in a window does not hold the rest


class RolloutState(StrEnum):
    DRAFT = "draft"  # described, not started
    RUNNING = "running"
    PAUSED = "paused"  # by an administrator; no new order
    STOPPED = "stopped"  # by its error threshold; an administrator may resume it
    COMPLETED = "completed"  # every wave finished
    CANCELLED = "cancelled"  # final; orders already sent run to their end


ROLLOUT_STATE_LABELS: dict[RolloutState, str] = {  # French: the rollouts page, audit, API
    RolloutState.DRAFT: "Brouillon",
    RolloutState.RUNNING: "En cours",
    RolloutState.PAUSED: "En pause",
    RolloutState.STOPPED: "Arrêté (seuil d'erreurs atteint)",
    RolloutState.COMPLETED: "Terminé",
    RolloutState.CANCELLED: "Annulé",
}
FINAL: frozenset[RolloutState] = frozenset({RolloutState.COMPLETED, RolloutState.CANCELLED})


class RolloutAction(StrEnum):
    """What an administrator may do to a rollout."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


ROLLOUT_ACTION_LABELS: dict[RolloutAction, str] = {
    RolloutAction.START: "Lancer le déploiement",
    RolloutAction.PAUSE: "Mettre en pause",
    RolloutAction.RESUME: "Reprendre",
    RolloutAction.CANCEL: "Annuler le déploiement",
}

_ALLOWED: dict[RolloutAction, tuple[frozenset[RolloutState], RolloutState]] = {
    RolloutAction.START: (frozenset({RolloutState.DRAFT}), RolloutState.RUNNING),
    RolloutAction.PAUSE: (frozenset({RolloutState.RUNNING}), RolloutState.PAUSED),
    RolloutAction.RESUME: (
        frozenset({RolloutState.PAUSED, RolloutState.STOPPED}),
        RolloutState.RUNNING,
    ),
    RolloutAction.CANCEL: (
        frozenset(
            {RolloutState.DRAFT, RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.STOPPED}
        ),
        RolloutState.CANCELLED,
    ),
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """The rollout stops itself when the current wave's failures reach either bound."""

    max_failures: int | None = 1
    max_failure_pct: float | None = None

    def __post_init__(self) -> None:
        if self.max_failures is not None and self.max_failures < 1:
            raise RolloutError("Le seuil d'erreurs est d'au moins un guichet.")
        if self.max_failure_pct is not None and not 0 < self.max_failure_pct <= 100:
            raise RolloutError("Le seuil d'erreurs est un pourcentage entre 0 et 100.")

    def reached(self, failures: int, wave_size: int) -> bool:
        if failures == 0:
            return False
        if self.max_failures is not None and failures >= self.max_failures:
            return True
        return self.max_failure_pct is not None and failures * 100 >= math.ceil(
            self.max_failure_pct * wave_size
        )


@dataclass(frozen=True, slots=True)
class CounterUpdate:
    """What one counter of the rollout reported last; ``state`` None: no order accepted yet
    (never sent, refused because a citizen was there, or unanswered)."""

    state: UpdateState | None = None
    since: datetime | None = None  # when it reached ``state`` (the server's receive time)


@dataclass(frozen=True, slots=True)
class Rollout:
    """A rollout as :func:`step` needs it."""

    waves: tuple[Wave, ...]
    state: RolloutState = RolloutState.DRAFT
    current_wave: int = 0
    wave_started_at: datetime | None = None
    threshold: Threshold = Threshold()
    wave_timeout: timedelta = DEFAULT_WAVE_TIMEOUT
    failures_since: datetime | None = None  # after a resume, earlier failures no longer count
    reason: str | None = None  # French: why it stopped or how it ended


@dataclass(frozen=True, slots=True)
class Step:
    """What :func:`step` decided: the rollout to save, and the counters to order now (each only
    if its maintenance window is open)."""

    rollout: Rollout
    to_order: tuple[str, ...] = ()
    wave_advanced: bool = False


def act(rollout: Rollout, action: RolloutAction, now: datetime) -> Rollout:
    """An administrator's action; RolloutError (French) when the state does not allow it."""
    allowed, after = _ALLOWED[action]
    if rollout.state not in allowed:
        label = ROLLOUT_STATE_LABELS[rollout.state].lower()
        raise RolloutError(
            f"« {ROLLOUT_ACTION_LABELS[action]} » est impossible : le déploiement est {label}."
        )
    if action is RolloutAction.START:
        if not rollout.waves:
            raise RolloutError("Aucun guichet à mettre à jour dans ce déploiement.")
        return replace(rollout, state=after, current_wave=0, wave_started_at=now, reason=None)
    if action is RolloutAction.RESUME and rollout.state is RolloutState.STOPPED:
        return replace(rollout, state=after, failures_since=now, reason=None)
    if action is RolloutAction.CANCEL:
        return replace(rollout, state=after, reason="Annulé par un administrateur.")
    return replace(rollout, state=after)


def failures_in_wave(rollout: Rollout, updates: Mapping[str, CounterUpdate]) -> int:
    """The current wave's counters rolled back or failed (since the last resume)."""
    count = 0
    for device_id in rollout.waves[rollout.current_wave]:
        update = updates.get(device_id, CounterUpdate())
        if update.state in FAILURES and _counts(update, rollout.failures_since):
            count += 1
    return count


def step(rollout: Rollout, updates: Mapping[str, CounterUpdate], now: datetime) -> Step:
    """The next move of a running rollout (any other state: nothing to do)."""
    if rollout.state is not RolloutState.RUNNING:
        return Step(rollout)
    wave = rollout.waves[rollout.current_wave]
    failures = failures_in_wave(rollout, updates)
    if rollout.threshold.reached(failures, len(wave)):
        reason = (
            f"Arrêt automatique : {failures} guichet(s) en échec sur {len(wave)} "
            f"dans la vague {rollout.current_wave + 1}."
        )
        return Step(replace(rollout, state=RolloutState.STOPPED, reason=reason))
    if not _finished(rollout, wave, updates, now):
        return Step(rollout, _unordered(wave, updates))
    if rollout.current_wave + 1 >= len(rollout.waves):
        done = replace(rollout, state=RolloutState.COMPLETED, reason=_summary(rollout, updates))
        return Step(done)
    advanced = replace(rollout, current_wave=rollout.current_wave + 1, wave_started_at=now)
    next_wave = advanced.waves[advanced.current_wave]
    return Step(advanced, _unordered(next_wave, updates), wave_advanced=True)


def _finished(
    rollout: Rollout, wave: Wave, updates: Mapping[str, CounterUpdate], now: datetime
) -> bool:
    if all(updates.get(d, CounterUpdate()).state in TERMINAL for d in wave):
        return True
    started = rollout.wave_started_at
    return started is not None and now - started >= rollout.wave_timeout


def _unordered(wave: Wave, updates: Mapping[str, CounterUpdate]) -> tuple[str, ...]:
    return tuple(d for d in wave if updates.get(d, CounterUpdate()).state is None)


def _counts(update: CounterUpdate, since: datetime | None) -> bool:
    return since is None or (update.since is not None and update.since >= since)


def _summary(rollout: Rollout, updates: Mapping[str, CounterUpdate]) -> str:
    everyone = [d for wave in rollout.waves for d in wave]
    committed = sum(
        1 for d in everyone if updates.get(d, CounterUpdate()).state is UpdateState.COMMITTED
    )
    return f"Terminé : {committed} guichet(s) à jour sur {len(everyone)}."
