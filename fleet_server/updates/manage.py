"""An administrator's rollouts (docs/updates.md, "Rollout"): create one (a release, its waves,
its threshold, its windows), start it (the waves planned then, over the counters not already
on that release), pause, resume, cancel; each act checked by ``rollout.act`` and audited. The
caller commits.

The API and the page describe a rollout the same way (a ``RolloutPlan``) and begin it through
:func:`launch`: one check of what was described — a site or a counter a wave names must be
one in service (:func:`choosable`), a night window is both hours or neither and at least as
long as an update — and one planning of the waves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import (
    NightWindowError,
    UnknownRolloutError,
    UnknownTargetError,
)
from fleet_server.models import CounterUpdateRecord, Device, Release, RolloutRecord
from fleet_server.security import audit
from fleet_server.updates import alerts, records
from fleet_server.updates.rollout import (
    DEFAULT_WAVE_TIMEOUT,
    Rollout,
    RolloutAction,
    RolloutState,
    Threshold,
    act,
)
from fleet_server.updates.waves import (
    ChosenDevices,
    ChosenSites,
    Target,
    WaveSpec,
    check_specs,
    plan_waves,
)
from fleet_server.updates.windows import DEFAULT_DURATION, DEFAULT_MARGIN
from guichet.contract import utcnow

AUDIT_ACTIONS = {
    RolloutAction.START: "rollout.start",
    RolloutAction.PAUSE: "rollout.pause",
    RolloutAction.RESUME: "rollout.resume",
    RolloutAction.CANCEL: "rollout.cancel",
}
SHOWN_CHARS = 64  # of a name no counter has, in a refusal (it may be anything)
# A counter a rollout may update: enrolled (it can fetch the bundle) and not withdrawn.
IN_SERVICE = (Device.revoked_at.is_(None), Device.broker_password_hash.is_not(None))


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """What an administrator describes."""

    release_id: int
    specs: Sequence[WaveSpec]
    threshold: Threshold = Threshold()  # noqa: RUF009 - frozen, so shared safely
    wave_timeout: timedelta = DEFAULT_WAVE_TIMEOUT
    margin: timedelta = DEFAULT_MARGIN
    duration: timedelta = DEFAULT_DURATION
    night_start: time | None = None
    night_end: time | None = None


@dataclass(frozen=True, slots=True)
class Choosable:
    """A counter a wave may name, as the page offers it."""

    device_id: str
    name: str
    site: str
    version: str | None


def choosable(session: Session) -> list[Choosable]:
    """The counters in service (``IN_SERVICE``), by site then id: what a wave may name."""
    query = select(Device.id, Device.name, Device.site, Device.software_version).where(*IN_SERVICE)
    found = [Choosable(i, name or i, site or "", v) for i, name, site, v in session.execute(query)]
    return sorted(found, key=lambda c: (c.site, c.device_id))


def launch(
    session: Session, plan: RolloutPlan, *, start: bool, actor: str, actor_user_id: int | None
) -> RolloutRecord:
    """Create a rollout and, with ``start``, start it at once (its waves planned): how the API
    and the page begin one. RolloutError (French) if anything is refused."""
    record = create(session, plan, actor=actor, actor_user_id=actor_user_id)
    if start:
        perform(session, record.id, RolloutAction.START, actor=actor, actor_user_id=actor_user_id)
    return record


def create(
    session: Session, plan: RolloutPlan, *, actor: str, actor_user_id: int | None
) -> RolloutRecord:
    """A draft rollout; RolloutError (French) if the release or the description is wrong."""
    release = session.get(Release, plan.release_id)
    if release is None:
        raise UnknownRolloutError("Version inconnue.")
    check_specs(plan.specs)
    check_chosen(session, plan.specs)
    check_night(plan)
    record = RolloutRecord(
        release_id=release.id,
        state=RolloutState.DRAFT.value,
        wave_specs=[records.spec_to_json(spec) for spec in plan.specs],
        waves=[],
        current_wave=0,
        max_failures=plan.threshold.max_failures,
        max_failure_pct=plan.threshold.max_failure_pct,
        wave_timeout_s=int(plan.wave_timeout.total_seconds()),
        margin_s=int(plan.margin.total_seconds()),
        duration_s=int(plan.duration.total_seconds()),
        night_start=plan.night_start,
        night_end=plan.night_end,
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(record)
    session.flush()
    audit.record(
        session, actor, "rollout.create", release.version, actor_user_id=actor_user_id,
        rollout_id=record.id, waves=record.wave_specs, max_failures=record.max_failures,
        max_failure_pct=record.max_failure_pct, night=_night_words(plan),
    )  # fmt: skip
    return record


def check_chosen(session: Session, specs: Sequence[WaveSpec]) -> None:
    """Every site and counter a wave names is one in service: a forged or stale name is
    refused (UnknownTargetError, French), never planned as an empty wave."""
    sites = {s for spec in specs if isinstance(spec, ChosenSites) for s in spec.sites}
    devices = {d for spec in specs if isinstance(spec, ChosenDevices) for d in spec.device_ids}
    if sites:
        query = select(Device.site).where(*IN_SERVICE, Device.site.in_(sites)).distinct()
        unknown = sorted(sites - {s for s in session.scalars(query) if s})
        if unknown:
            name = _shown(unknown[0])
            raise UnknownTargetError(f"Site inconnu ou sans guichet en service : « {name} ».")
    if devices:
        query = select(Device.id).where(*IN_SERVICE, Device.id.in_(devices))
        unknown = sorted(devices - set(session.scalars(query)))
        if unknown:
            raise UnknownTargetError(f"Guichet inconnu ou retiré : « {_shown(unknown[0])} ».")


def check_night(plan: RolloutPlan) -> None:
    """Both hours or neither, and long enough for one update (NightWindowError, French):
    a window shorter than ``plan.duration`` would never let a counter install."""
    start, end = plan.night_start, plan.night_end
    if start is None and end is None:
        return
    if start is None or end is None:
        raise NightWindowError(
            "Plage de nuit : indiquez l'heure de début et l'heure de fin, ou aucune des deux."
        )
    minutes = (_minutes(end) - _minutes(start)) % (24 * 60)
    if minutes == 0:
        raise NightWindowError("La plage de nuit commence et finit à la même heure.")
    if timedelta(minutes=minutes) < plan.duration:
        needed = int(plan.duration.total_seconds() // 60)
        raise NightWindowError(
            f"La plage de nuit est plus courte qu'une mise à jour ({needed} minutes au moins)."
        )


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _night_words(plan: RolloutPlan) -> str | None:
    if plan.night_start is None or plan.night_end is None:
        return None
    return f"{plan.night_start:%H:%M}–{plan.night_end:%H:%M}"


def _shown(name: str) -> str:
    if not name:
        return "(sans nom)"
    return name if len(name) <= SHOWN_CHARS else name[:SHOWN_CHARS] + "…"


def perform(
    session: Session,
    rollout_id: int,
    action: RolloutAction,
    *,
    actor: str,
    actor_user_id: int | None,
    now: datetime | None = None,
) -> RolloutRecord:
    """An administrator's act on a rollout (row locked); RolloutError (French) if refused."""
    now = now or utcnow()
    record = session.get(RolloutRecord, rollout_id, with_for_update=True)
    if record is None:
        raise UnknownRolloutError("Déploiement inconnu.")
    release = session.get(Release, record.release_id)
    assert release is not None  # RESTRICT: a release with rollouts stays
    rollout = records.to_rollout(record)
    if action is RolloutAction.START:
        rollout = _planned(session, record, release, rollout)
    was = rollout.state
    rollout = act(rollout, action, now)
    records.save(record, rollout)
    if action is RolloutAction.START:
        _add_counters(session, record, release.version)
    if action in (RolloutAction.RESUME, RolloutAction.CANCEL) and was is RolloutState.STOPPED:
        alerts.clear_stopped(session, record.id, now)
    audit.record(
        session, actor, AUDIT_ACTIONS[action], release.version, actor_user_id=actor_user_id,
        rollout_id=record.id,
    )  # fmt: skip
    return record


def _planned(
    session: Session, record: RolloutRecord, release: Release, rollout: Rollout
) -> Rollout:
    if rollout.state is not RolloutState.DRAFT:
        return rollout  # act() refuses it with the right sentence
    query = select(Device.id, Device.site).where(
        *IN_SERVICE,
        (Device.software_version.is_(None)) | (Device.software_version != release.version),
    )
    targets = [Target(device_id, site or "") for device_id, site in session.execute(query)]
    waves = plan_waves(targets, records.specs_from_json(record.wave_specs))
    return Rollout(
        waves=tuple(waves),
        state=rollout.state,
        threshold=rollout.threshold,
        wave_timeout=rollout.wave_timeout,
    )


def _add_counters(session: Session, record: RolloutRecord, version: str) -> None:
    for number, wave in enumerate(record.waves):
        for device_id in wave:
            session.add(
                CounterUpdateRecord(
                    rollout_id=record.id, device_id=device_id, release=version, wave=number
                )
            )
