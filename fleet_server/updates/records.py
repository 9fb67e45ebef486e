"""Rows ↔ the pure types: ``RolloutRecord`` ↔ ``rollout.Rollout``, ``CounterUpdateRecord`` ↔
``rollout.CounterUpdate``, the wave descriptions as JSON, the maintenance-window policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import RolloutError
from fleet_server.models import CounterUpdateRecord, RolloutRecord
from fleet_server.updates.rollout import CounterUpdate, Rollout, RolloutState, Threshold
from fleet_server.updates.waves import (
    Canary,
    ChosenDevices,
    ChosenSites,
    Percent,
    Rest,
    WaveSpec,
)
from fleet_server.updates.windows import NightWindow, WindowPolicy
from guichet.updates import UpdateState

BUNDLE_PATH = "/api/v1/bundles/"  # + version: where a counter fetches the release it was ordered


def spec_to_json(spec: WaveSpec) -> dict[str, Any]:
    if isinstance(spec, Canary):
        return {"kind": "canary", "count": spec.count}
    if isinstance(spec, Percent):
        return {"kind": "percent", "pct": spec.pct}
    if isinstance(spec, ChosenDevices):
        return {"kind": "devices", "device_ids": sorted(spec.device_ids)}
    if isinstance(spec, ChosenSites):
        return {"kind": "sites", "sites": sorted(spec.sites)}
    return {"kind": "rest"}


def spec_from_json(data: Mapping[str, Any]) -> WaveSpec:
    """One wave's description; RolloutError (French) when it is not one."""
    try:
        kind = data["kind"]
        if kind == "canary":
            return Canary(int(data["count"]))
        if kind == "percent":
            return Percent(float(data["pct"]))
        if kind == "devices":
            return ChosenDevices(frozenset(str(d) for d in data["device_ids"]))
        if kind == "sites":
            return ChosenSites(frozenset(str(s) for s in data["sites"]))
        if kind == "rest":
            return Rest()
    except (KeyError, TypeError, ValueError):
        pass
    raise RolloutError("Description de vague illisible.")


def specs_from_json(data: Sequence[Mapping[str, Any]]) -> list[WaveSpec]:
    return [spec_from_json(item) for item in data]


def to_rollout(record: RolloutRecord) -> Rollout:
    return Rollout(
        waves=tuple(tuple(wave) for wave in record.waves),
        state=RolloutState(record.state),
        current_wave=record.current_wave,
        wave_started_at=record.wave_started_at,
        threshold=Threshold(record.max_failures, record.max_failure_pct),
        wave_timeout=timedelta(seconds=record.wave_timeout_s),
        failures_since=record.failures_since,
        reason=record.reason,
    )


def save(record: RolloutRecord, rollout: Rollout) -> None:
    """What ``step`` or ``act`` changed, onto the row (the waves are planned once)."""
    record.state = rollout.state.value
    record.waves = [list(wave) for wave in rollout.waves]
    record.current_wave = rollout.current_wave
    record.wave_started_at = rollout.wave_started_at
    record.failures_since = rollout.failures_since
    record.reason = rollout.reason


def policy_of(record: RolloutRecord) -> WindowPolicy:
    night = None
    if record.night_start is not None and record.night_end is not None:
        night = NightWindow(record.night_start, record.night_end)
    return WindowPolicy(
        margin=timedelta(seconds=record.margin_s),
        duration=timedelta(seconds=record.duration_s),
        night=night,
    )


def counter_rows(session: Session, rollout_id: int) -> list[CounterUpdateRecord]:
    query = (
        select(CounterUpdateRecord)
        .where(CounterUpdateRecord.rollout_id == rollout_id)
        .order_by(CounterUpdateRecord.wave, CounterUpdateRecord.id)
    )
    return list(session.scalars(query))


def counter_update(row: CounterUpdateRecord) -> CounterUpdate:
    state = UpdateState(row.state) if row.state else None
    return CounterUpdate(state=state, since=row.since)


def counter_updates(rows: Sequence[CounterUpdateRecord]) -> dict[str, CounterUpdate]:
    return {row.device_id: counter_update(row) for row in rows}
