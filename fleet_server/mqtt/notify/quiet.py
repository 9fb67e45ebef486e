"""Quiet hours: a daily span of Paris wall-clock time during which a recipient's e-mail
waits (``docs/notifications.md``). ``22:00``–``07:00`` spans midnight; equal ends mean none."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")  # the Pays's clock, daylight saving included
HHMM_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_hhmm(text: str) -> time:
    """``"07:30"`` → 07:30; ValueError (French) for anything else."""
    match = HHMM_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"heure invalide « {text} » (HH:MM, par exemple 07:30)")
    return time(int(match.group(1)), int(match.group(2)))


def quiet_until(start: str | None, end: str | None, at: datetime) -> datetime | None:
    """When the quiet hours that contain ``at`` end (UTC), or None when ``at`` is not in
    quiet hours (or the target has none)."""
    if not start or not end:
        return None
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    if begin == finish:
        return None
    local = at.astimezone(PARIS)
    now = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if begin < finish:
        inside = begin <= now < finish
        end_day = local.date()
    else:  # spans midnight: 22:00–07:00
        inside = now >= begin or now < finish
        end_day = local.date() + timedelta(days=1) if now >= begin else local.date()
    if not inside:
        return None
    wall = datetime.combine(end_day, finish)
    # The wall-clock end in Paris (fold=0: the first 02:30 of an autumn night), in UTC.
    return wall.replace(tzinfo=PARIS).astimezone(UTC)
