"""A counter's site and name, as the Pays sets them.

The site decides which reception users see a counter and where its calls and answers count
in the statistics, so only enrolment and an administrator set it; what a counter reports
about itself is kept apart (``reported_site``/``reported_name``) and changes nothing. A
reception user is given one of the ``known_sites``, never a name typed freely.
"""

from __future__ import annotations

import logging
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import Device, EnrolmentToken
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

MAX_SITE = 128
MAX_NAME = 128


class SiteError(FleetError):
    """A site or name that cannot be set (unknown counter, empty or too long); French."""


def set_identity(session: Session, device_id: str, site: str, name: str) -> tuple[str, str]:
    """Set the counter's site and name (trimmed); the caller commits. Returns the old pair."""
    device = session.get(Device, device_id)
    if device is None:
        raise SiteError(f"guichet inconnu « {device_id} »")
    site, name = " ".join(site.split()), " ".join(name.split())
    if not site or len(site) > MAX_SITE:
        raise SiteError(f"le site est obligatoire ({MAX_SITE} caractères au plus)")
    if len(name) > MAX_NAME:
        raise SiteError(f"le nom est trop long ({MAX_NAME} caractères au plus)")
    before = (device.site or "", device.name or "")
    device.site, device.name = site, name
    logger.info("counter site set", extra={"device_id": device_id})
    return before


def known_sites(session: Session) -> list[str]:
    """The sites a reception user may be given: those of the counters in service, and those
    of enrolment tokens still usable (a site being equipped). Sorted as French reads them."""
    counters = select(Device.site).where(Device.revoked_at.is_(None)).distinct()
    tokens = (
        select(EnrolmentToken.site)
        .where(
            EnrolmentToken.revoked.is_(False),
            EnrolmentToken.expires_at > utcnow(),
            EnrolmentToken.uses < EnrolmentToken.max_uses,
        )
        .distinct()
    )
    found = {s for s in session.scalars(counters) if s} | {s for s in session.scalars(tokens) if s}
    return sorted(found, key=_reading_order)


def _reading_order(text: str) -> tuple[str, str]:
    """``Vallée`` sorts with ``Valence``, not after ``Z``: accents and case set aside."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.casefold(), text
