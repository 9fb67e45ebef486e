"""Which service a counter's button calls now.

The one place that decides it: today the service the administrator set on the counter's page;
the schedules issue replaces the body of :func:`service_for` (appointment at this counter,
else an open time slot or permanence) without touching its callers.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from fleet_server.models import Device, Service

logger = logging.getLogger(__name__)


def service_for(session: Session, device_id: str, now: datetime) -> Service | None:
    """The service this counter's button calls at ``now``, or None when nothing is open."""
    del now  # schedules come later: the per-counter choice holds at any time
    device = session.get(Device, device_id)
    if device is None or not device.service:
        return None
    return session.get(Service, device.service)
