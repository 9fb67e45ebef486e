"""Which counters of a rollout's wave may be sent their order now: each one's timetable (as
``counter_schedule`` computes it for the counter itself) and whether it is in a call (the
caller passes ``CallManager.in_call``), judged by ``windows.install_allowed``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from fleet_server.scheme.schedules import ScheduleOptions, counter_schedule
from fleet_server.updates.windows import Verdict, WindowPolicy, install_allowed


def install_verdicts(
    session: Session,
    device_ids: Iterable[str],
    now: datetime,
    in_call: Callable[[str], bool],
    policy: WindowPolicy,
    options: ScheduleOptions | None = None,
) -> dict[str, Verdict]:
    """Each counter's verdict at ``now``, by device id (an unknown counter: never)."""
    return {
        device_id: install_allowed(
            counter_schedule(session, device_id, now, options), now, in_call(device_id), policy
        )
        for device_id in device_ids
    }
