"""Calls' quality on the server (issue 19, item 7): the counter's summary, from its
``call_ended`` event, stored on the call's row; and which counters had a poor line this week.

``attach`` runs in the MQTT writer's transaction (``mqtt/store/kinds.py``): it keeps the
values ``guichet.quality.read_quality`` believes, logs the others, and writes them only on a
call of the counter that sent the event — a counter cannot put figures on another's call.
Nothing here raises for bad input: the event itself is stored whatever its figures say.

A poor line is defined once, here (``POOR``), and documented in ``docs/call-quality.md``: over
the counter's calls of the last ``WEEK`` that carried a summary (at least ``MIN_MEASURED_S``
of them, so one short call does not flag a town hall), weighted by each call's measured time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import QueryableAttribute, Session

from fleet_server.models import CallRecord
from guichet.events import EventField
from guichet.quality import read_quality

logger = logging.getLogger(__name__)

WEEK = timedelta(days=7)  # "this week": the last seven days, whatever the day today
MIN_MEASURED_S = 60.0  # below a minute of measured calls in the week, no verdict


class Weakness(StrEnum):
    """Why a line is poor; each with its threshold in ``POOR``."""

    FROZEN = "frozen"  # the agent's picture frozen, % of call time
    LOSS = "loss"  # packets lost on the counter's uplink, %
    BITRATE = "bitrate"  # average video bitrate sent, kbit/s
    AUDIO = "audio"  # the agent's voice interrupted, % of call time


WEAKNESS_LABELS: dict[Weakness, str] = {  # French, as the fleet table's flag explains it
    Weakness.FROZEN: "image de l'agent gelée",
    Weakness.LOSS: "paquets perdus",
    Weakness.BITRATE: "débit vidéo moyen",
    Weakness.AUDIO: "voix de l'agent interrompue",
}


@dataclass(frozen=True)
class Threshold:
    limit: float
    above: bool  # poor when the week's figure is above the limit (else below)

    def crossed(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.limit if self.above else value < self.limit


POOR: dict[Weakness, Threshold] = {
    Weakness.FROZEN: Threshold(2.0, above=True),  # > 2 % of call time frozen (issue 19 goal)
    Weakness.LOSS: Threshold(5.0, above=True),  # > 5 % lost: video visibly breaks up
    Weakness.BITRATE: Threshold(300.0, above=False),  # < 300 kbit/s: below 360p at 15 fps
    Weakness.AUDIO: Threshold(1.0, above=True),  # > 1 % of call time without the voice
}


# --- storing a counter's summary ------------------------------------------------------------


def attach(session: Session, device_id: str, data: Mapping[str, object]) -> bool:
    """Put the quality figures of a ``call_ended`` event's ``data`` on the call it names, if
    that call is ``device_id``'s; True when a call row took them. Never raises on bad data."""
    reading = read_quality(data)
    if not reading.present:
        return False  # an older counter, or a call that never connected
    log = {"device_id": device_id}
    if reading.rejected:
        logger.warning(
            "call quality figures ignored: %s",
            ", ".join(f"{key} ({why})" for key, why in sorted(reading.rejected.items())),
            extra=log,
        )
    call_id = _call_id(data.get(EventField.CALL_ID))
    if call_id is None:
        logger.warning("call quality without a valid call id ignored", extra=log)
        return False
    if not reading.values:
        return False
    result = session.execute(
        update(CallRecord)
        .where(CallRecord.id == call_id, CallRecord.device_id == device_id)
        .values({str(key): value for key, value in reading.values.items()})
    )
    if not getattr(result, "rowcount", 0):
        # Another counter's call (or one this server never recorded): never attached.
        logger.warning(
            "call quality for a call that is not this counter's ignored",
            extra=log | {"call_id": str(call_id)},
        )
        return False
    return True


def _call_id(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- the week's verdict per counter --------------------------------------------------------


@dataclass(frozen=True)
class WeekQuality:
    """A counter's calls of the week that carried a summary, their figures weighted by
    measured time (None: no call measured that figure)."""

    calls: int
    measured_s: float
    frozen_pct: float | None
    loss_pct: float | None
    video_kbps: float | None
    audio_gaps_pct: float | None

    def figure(self, weakness: Weakness) -> float | None:
        return {
            Weakness.FROZEN: self.frozen_pct,
            Weakness.LOSS: self.loss_pct,
            Weakness.BITRATE: self.video_kbps,
            Weakness.AUDIO: self.audio_gaps_pct,
        }[weakness]

    @property
    def weaknesses(self) -> list[Weakness]:
        """What makes the line poor (empty: it is not, or too little was measured)."""
        if self.measured_s < MIN_MEASURED_S:
            return []
        return [w for w, threshold in POOR.items() if threshold.crossed(self.figure(w))]


def _weighted(column: QueryableAttribute[float | None]) -> list[ColumnElement[Any]]:
    """Σ value × measured time, and Σ measured time where the value is known."""
    weight = CallRecord.measured_s
    return [
        func.sum(column * weight),
        func.sum(case((column.is_not(None), weight), else_=None)),
    ]


def week_quality(
    session: Session, device_ids: Sequence[str], now: datetime
) -> dict[str, WeekQuality]:
    """The last ``WEEK``'s figures of each of ``device_ids`` that had measured calls: one
    aggregate query (the ``(device_id, requested_at)`` index), whatever the page's length."""
    if not device_ids:
        return {}
    stmt = (
        select(
            CallRecord.device_id,
            func.count(),
            func.sum(CallRecord.measured_s),
            func.sum(CallRecord.frozen_s),
            *_weighted(CallRecord.loss_pct),
            *_weighted(CallRecord.video_kbps_avg),
            *_weighted(CallRecord.audio_gaps_pct),
        )
        .where(
            CallRecord.device_id.in_(list(device_ids)),
            CallRecord.requested_at >= now - WEEK,
            CallRecord.measured_s > 0,
        )
        .group_by(CallRecord.device_id)
    )
    out = {}
    for row in session.execute(stmt):
        device_id, calls, measured, frozen = row[0], row[1], float(row[2] or 0), row[3]
        out[device_id] = WeekQuality(
            calls=int(calls),
            measured_s=measured,
            frozen_pct=100 * float(frozen) / measured if frozen is not None and measured else None,
            loss_pct=_ratio(row[4], row[5]),
            video_kbps=_ratio(row[6], row[7]),
            audio_gaps_pct=_ratio(row[8], row[9]),
        )
    return out


def _ratio(total: object, weight: object) -> float | None:
    if total is None or not weight:
        return None
    if not isinstance(total, int | float) or not isinstance(weight, int | float):
        return None
    return float(total) / float(weight)


def poor_lines(
    session: Session, device_ids: Sequence[str], now: datetime
) -> dict[str, WeekQuality]:
    """Of ``device_ids``, those whose line was poor this week, with their figures."""
    weeks = week_quality(session, device_ids, now)
    return {device_id: week for device_id, week in weeks.items() if week.weaknesses}
