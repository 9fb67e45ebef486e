"""A counter's update progress (issue 13) goes through the ingest's store without being
refused; until the update tables exist it only marks the counter as seen (docs/updates.md)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import Device
from fleet_server.mqtt import store
from guichet import contract
from guichet.updates import UpdateState
from tests.fleet_server.storage_support import ago, make_settings, received, status

DEVICE = "bandiat-01"


def test_update_progress_is_accepted_and_marks_the_counter_seen(
    sessions: sessionmaker[Session],
) -> None:
    settings = make_settings()
    progress = contract.UpdateProgress(
        id=uuid.uuid4(),
        at=contract.utcnow(),
        release="1.5.0",
        state=UpdateState.DOWNLOADING,
        percent=42,
    )
    first, later = ago(minutes=5), ago(seconds=1)
    with sessions.begin() as session:
        store.apply_batch(session, [received(DEVICE, status(), first)], settings)
    with sessions.begin() as session:
        duplicates = store.apply_batch(session, [received(DEVICE, progress, later)], settings)
    assert duplicates == [False]
    with sessions() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        assert device.last_seen == later
