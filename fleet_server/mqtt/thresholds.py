"""Offline thresholds per site: after how many minutes offline or silent a counter raises
its alert (and is told to whoever is notified). A site without its own value uses the
fleet-wide ``alert_offline_after_min``. The caller commits (with its audit entry); refusals
are :class:`ThresholdError`, in French.

A site is one of :func:`fleet_server.security.sites.known_sites` — never a name a counter
only claims about itself — when its value is set; removing a value is allowed for any site
that has one (its counters may have gone since).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import SiteThreshold
from fleet_server.security import sites
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

MIN_MINUTES = 1  # below a minute, a counter rebooting for an update would alert
MAX_MINUTES = 1440  # a day: longer, and a dead counter goes unnoticed for too long


class ThresholdError(FleetError):
    """A threshold that cannot be set, in French (lowercase: the page makes it a sentence)."""


class ThresholdNotFoundError(ThresholdError):
    """The site has no threshold of its own."""


def all_thresholds(session: Session) -> list[SiteThreshold]:
    return list(session.scalars(select(SiteThreshold).order_by(SiteThreshold.site)))


def by_site(session: Session) -> dict[str, int]:
    """``{site: minutes}`` for the sites with their own threshold."""
    rows = session.execute(select(SiteThreshold.site, SiteThreshold.offline_after_min))
    found: dict[str, int] = dict(rows.all())
    return found


def set_threshold(session: Session, site: str, minutes: int) -> tuple[SiteThreshold, int | None]:
    """Set (or change) a site's threshold; the row and the previous value (None: none)."""
    site = " ".join(site.split())
    if site not in sites.known_sites(session):
        raise ThresholdError(f"site inconnu « {site} »")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ThresholdError(
            f"le délai doit être entre {MIN_MINUTES} et {MAX_MINUTES} minutes (un jour)"
        )
    row = session.get(SiteThreshold, site)
    before = row.offline_after_min if row is not None else None
    if row is None:
        row = SiteThreshold(site=site, offline_after_min=minutes, updated_at=utcnow())
        session.add(row)
    else:
        row.offline_after_min, row.updated_at = minutes, utcnow()
    session.flush()
    logger.info("site offline threshold set", extra={"minutes": minutes})
    return row, before


def remove(session: Session, site: str) -> int:
    """Remove a site's own threshold (back to the fleet-wide one); the value it had."""
    row = session.get(SiteThreshold, " ".join(site.split()))
    if row is None:
        raise ThresholdNotFoundError("ce site n'a pas de délai propre")
    minutes = row.offline_after_min
    session.delete(row)
    session.flush()
    logger.info("site offline threshold removed")
    return minutes


def groups(own: dict[str, int], default_min: float) -> list[tuple[float, list[str] | None]]:
    """Each delay in use and the sites it applies to (``None``: every site without its own
    value): the health check runs one indexed query per distinct delay, a handful."""
    grouped: dict[float, list[str]] = defaultdict(list)
    for site, minutes in own.items():
        grouped[float(minutes)].append(site)
    own_groups: list[tuple[float, list[str] | None]] = [
        (m, sorted(s)) for m, s in sorted(grouped.items())
    ]
    return [(default_min, None), *own_groups]
