"""The call log's read side (``/calls``): calls newest first, of one service or all, filtered
by site, counter, outcome or day, a page at a time (keyset on ``(requested_at, id)``,
:mod:`fleet_server.paging`). The log grows with time: its pages are not counted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from fleet_server import paging
from fleet_server.models import CallRecord
from guichet.signalling import EndReason

logger = logging.getLogger(__name__)

ONGOING = "ongoing"  # the outcome filter's value for calls not ended yet
OUTCOMES = (*(r.value for r in EndReason), ONGOING)
ORDER = paging.Ordering(CallRecord.requested_at, CallRecord.id, descending=True)


@dataclass(frozen=True)
class CallFilter:
    service: str | None = None
    site: str | None = None
    device_id: str | None = None
    outcome: str | None = None  # an EndReason value, or ONGOING
    until: date | None = None  # requested on this Paris day or before

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.service:
            conds.append(CallRecord.service == self.service)
        if self.site:
            conds.append(CallRecord.site == self.site)
        if self.device_id:
            conds.append(CallRecord.device_id == self.device_id)
        if self.outcome == ONGOING:
            conds.append(CallRecord.end_reason.is_(None))
        elif self.outcome:
            conds.append(CallRecord.end_reason == self.outcome)
        if self.until:
            conds.append(paging.until_day(CallRecord.requested_at, self.until))
        return conds


def calls_page(
    session: Session,
    flt: CallFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = paging.DEFAULT_PAGE_SIZE,
) -> paging.Page[CallRecord]:
    stmt = select(CallRecord).where(*flt.conditions())
    return paging.keyset_page(
        session, stmt, ORDER, _call, after=after, before=before, limit=limit, counted=False
    )


def _call(row: paging.AnyRow) -> CallRecord:
    call: CallRecord = row[0]
    return call
