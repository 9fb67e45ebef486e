"""What a rollout shows of each counter (its wave, its update state in French, its percent
and reason): one model for the rollout's page and the API's ``/rollouts/{id}`` alike."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from fleet_server.models import CounterUpdateRecord
from guichet.updates import UPDATE_STATE_LABELS, UpdateState

NOT_ORDERED = "En attente"  # a counter of a wave not reached yet: no order sent


class CounterOut(BaseModel):
    device_id: str
    wave: int
    state: str | None
    state_label: str
    percent: int | None
    reason: str | None
    ordered_at: datetime | None
    since: datetime | None


def counter_out(row: CounterUpdateRecord) -> CounterOut:
    label = UPDATE_STATE_LABELS[UpdateState(row.state)] if row.state else NOT_ORDERED
    return CounterOut(
        device_id=row.device_id, wave=row.wave, state=row.state, state_label=label,
        percent=row.percent, reason=row.reason, ordered_at=row.ordered_at, since=row.since,
    )  # fmt: skip
