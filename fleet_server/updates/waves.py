"""A rollout's waves: which counters take a release in which order (docs/updates.md).

An administrator describes waves — the first *n* counters (the canary), a percentage of the
whole target, chosen counters, chosen sites, or the rest — and :func:`plan_waves` turns them
into lists of counters once, when the rollout starts. Counters are taken in a stable order
(site, then id); a counter is in one wave only, the first that takes it; a wave that takes
nobody is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleet_server.errors import RolloutError

MAX_WAVES = 20  # more is a mistake in the form, not a plan
MAX_CANARY = 10_000  # a canary wave's count: the API's and the page's bound
MAX_CHOSEN_DEVICES = 500  # one wave's chosen counters: the API's and the page's bound
MAX_CHOSEN_SITES = 100  # one wave's chosen sites
MAX_DEVICE_ID = 64  # as the devices table keeps them
MAX_SITE = 128


@dataclass(frozen=True, slots=True)
class Target:
    """One counter a rollout may update."""

    device_id: str
    site: str


@dataclass(frozen=True, slots=True)
class Canary:
    """The first ``count`` counters not yet taken."""

    count: int


@dataclass(frozen=True, slots=True)
class Percent:
    """``pct`` % of the whole target (rounded up, at least one), among those not yet taken."""

    pct: float


@dataclass(frozen=True, slots=True)
class ChosenDevices:
    device_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ChosenSites:
    sites: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rest:
    """Every counter not yet taken."""


WaveSpec = Canary | Percent | ChosenDevices | ChosenSites | Rest

Wave = tuple[str, ...]  # device ids, in the order they are taken


def check_specs(specs: Sequence[WaveSpec]) -> None:
    """Refuse a description that cannot mean what the administrator wants (French)."""
    if not specs:
        raise RolloutError("Un déploiement a au moins une vague.")
    if len(specs) > MAX_WAVES:
        raise RolloutError(f"Un déploiement a au plus {MAX_WAVES} vagues.")
    for number, spec in enumerate(specs, start=1):
        if isinstance(spec, Canary) and spec.count < 1:
            raise RolloutError(f"Vague {number} : au moins un guichet.")
        if isinstance(spec, Percent) and not 0 < spec.pct <= 100:
            raise RolloutError(f"Vague {number} : un pourcentage entre 0 et 100.")
        if isinstance(spec, ChosenDevices | ChosenSites) and not _chosen(spec):
            raise RolloutError(f"Vague {number} : choisissez au moins un guichet ou un site.")
        if isinstance(spec, ChosenDevices) and len(spec.device_ids) > MAX_CHOSEN_DEVICES:
            raise RolloutError(f"Vague {number} : {MAX_CHOSEN_DEVICES} guichets choisis au plus.")
        if isinstance(spec, ChosenSites) and len(spec.sites) > MAX_CHOSEN_SITES:
            raise RolloutError(f"Vague {number} : {MAX_CHOSEN_SITES} sites choisis au plus.")
        if isinstance(spec, Rest) and number != len(specs):
            raise RolloutError("« Tous les autres » ne peut être que la dernière vague.")


def plan_waves(targets: Sequence[Target], specs: Sequence[WaveSpec]) -> list[Wave]:
    """The counters of each wave, in order; empty waves dropped."""
    check_specs(specs)
    ordered = sorted(set(targets), key=lambda t: (t.site, t.device_id))
    taken: set[str] = set()
    waves: list[Wave] = []
    for spec in specs:
        free = [t for t in ordered if t.device_id not in taken]
        wave = tuple(t.device_id for t in _take(spec, free, len(ordered)))
        taken.update(wave)
        if wave:
            waves.append(wave)
    return waves


def _take(spec: WaveSpec, free: list[Target], total: int) -> list[Target]:
    if isinstance(spec, Canary):
        return free[: spec.count]
    if isinstance(spec, Percent):
        return free[: max(1, math.ceil(total * spec.pct / 100))] if total else []
    if isinstance(spec, ChosenDevices):
        return [t for t in free if t.device_id in spec.device_ids]
    if isinstance(spec, ChosenSites):
        return [t for t in free if t.site in spec.sites]
    return free


def _chosen(spec: ChosenDevices | ChosenSites) -> frozenset[str]:
    return spec.device_ids if isinstance(spec, ChosenDevices) else spec.sites
