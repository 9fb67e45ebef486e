"""An administrator's rollouts (docs/updates.md, "Rollout"): create one (a release, its waves,
its threshold, its windows), start it (the waves planned then, over the counters not already
on that release), pause, resume, cancel; each act checked by ``rollout.act`` and audited. The
caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import RolloutError, UnknownRolloutError
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
from fleet_server.updates.waves import Target, WaveSpec, check_specs, plan_waves
from fleet_server.updates.windows import DEFAULT_DURATION, DEFAULT_MARGIN
from guichet.contract import utcnow

AUDIT_ACTIONS = {
    RolloutAction.START: "rollout.start",
    RolloutAction.PAUSE: "rollout.pause",
    RolloutAction.RESUME: "rollout.resume",
    RolloutAction.CANCEL: "rollout.cancel",
}


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


def create(
    session: Session, plan: RolloutPlan, *, actor: str, actor_user_id: int | None
) -> RolloutRecord:
    """A draft rollout; RolloutError (French) if the release or the description is wrong."""
    release = session.get(Release, plan.release_id)
    if release is None:
        raise UnknownRolloutError("Version inconnue.")
    check_specs(plan.specs)
    if (plan.night_start is None) != (plan.night_end is None):
        raise RolloutError("La plage de nuit a un début et une fin.")
    if plan.night_start is not None and plan.night_start == plan.night_end:
        raise RolloutError("La plage de nuit commence et finit à la même heure.")
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
        rollout_id=record.id, waves=record.wave_specs,
    )  # fmt: skip
    return record


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
        Device.revoked_at.is_(None),
        Device.broker_password_hash.is_not(None),  # enrolled: it can fetch the bundle
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
