"""A counter's update progress (issue 13) through the ingest's store: on its row for the
dashboard, and on its row in the rollout of that release, dated by the server."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import CounterUpdateRecord, Device, Release, RolloutRecord
from fleet_server.mqtt import store
from fleet_server.settings import Settings
from guichet import contract
from guichet.updates import UpdateState
from tests.fleet_server.storage_support import ago, make_settings, received, status

DEVICE = "bandiat-01"


def _progress(state: UpdateState, **fields: object) -> contract.UpdateProgress:
    return contract.UpdateProgress(
        id=uuid.uuid4(),
        at=contract.utcnow(),
        release="1.5.0",
        state=state,
        **fields,  # type: ignore[arg-type]
    )


def _apply(
    sessions: sessionmaker[Session], settings: Settings, message: contract.WireMessage, at: datetime
) -> list[bool]:
    with sessions.begin() as session:
        return store.apply_batch(session, [received(DEVICE, message, at)], settings)


def _seed_rollout(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        release = Release(
            version="1.5.0",
            compatible="guichet-proche-rpi-arm64",
            size=1000,
            sha256="0" * 64,
            path="/var/lib/guichet-fleet/releases/1.5.0.raucb",
            uploaded_at=ago(days=1),
            uploaded_by="admin",
        )
        session.add(release)
        session.flush()
        rollout = RolloutRecord(
            release_id=release.id,
            state="running",
            wave_specs=[{"canary": 1}],
            waves=[[DEVICE]],
            wave_timeout_s=3 * 86400,
            margin_s=1800,
            duration_s=2700,
            created_at=ago(days=1),
            created_by="admin",
        )
        session.add(rollout)
        session.flush()
        session.add(
            CounterUpdateRecord(rollout_id=rollout.id, device_id=DEVICE, release="1.5.0", wave=0)
        )


def test_progress_reaches_the_counter_row_and_its_rollout(
    sessions: sessionmaker[Session],
) -> None:
    settings = make_settings()
    _apply(sessions, settings, status(), ago(minutes=30))
    _seed_rollout(sessions)
    downloading = ago(minutes=20)
    assert _apply(
        sessions, settings, _progress(UpdateState.DOWNLOADING, percent=42), downloading
    ) == [False]
    _apply(sessions, settings, _progress(UpdateState.DOWNLOADING, percent=80), ago(minutes=19))
    reason = "Le guichet n'a pas rejoint la flotte dans les 10 minutes : retour à la 1.4.2."
    rolled_back = ago(minutes=1)
    _apply(sessions, settings, _progress(UpdateState.ROLLED_BACK, reason=reason), rolled_back)
    with sessions() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        assert device.update_state == "rolled_back"
        assert device.update_release == "1.5.0"
        assert device.update_reason == reason
        assert device.update_at == rolled_back
        assert device.last_seen == rolled_back
        row = session.scalars(select(CounterUpdateRecord)).one()
        assert (row.state, row.percent, row.reason, row.since) == (
            "rolled_back",
            None,
            reason,
            rolled_back,
        )


def test_a_repeated_state_keeps_the_time_it_was_reached(
    sessions: sessionmaker[Session],
) -> None:
    settings = make_settings()
    _apply(sessions, settings, status(), ago(minutes=30))
    _seed_rollout(sessions)
    first = ago(minutes=20)
    _apply(sessions, settings, _progress(UpdateState.DOWNLOADING, percent=10), first)
    _apply(sessions, settings, _progress(UpdateState.DOWNLOADING, percent=90), ago(minutes=10))
    with sessions() as session:
        row = session.scalars(select(CounterUpdateRecord)).one()
        assert (row.percent, row.since) == (90, first)
