"""When a counter may install an update: closed, idle, and in the night window if one is set
(docs/updates.md, "Maintenance windows"). Pure, over the ``CounterSchedule`` that
``fleet_server.scheme.schedules.counter_schedule`` computes — the same openings the counter
receives; nothing here computes an opening.

An update from its order to its commit takes at most ``duration``; no opening, appointment
window or booked appointment may start or be under way within ``margin`` of that span. A
counter with a fixed service (open at all times) therefore never gets a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from guichet.schedule import PARIS, CounterSchedule, hour_fr, when_fr

DEFAULT_MARGIN = timedelta(minutes=30)  # never this close to an opening
DEFAULT_DURATION = timedelta(minutes=45)  # download on a slow line, write, reboot, health gate


@dataclass(frozen=True, slots=True)
class NightWindow:
    """Paris wall-clock hours when an install may start and must end; ``end`` before ``start``
    spans midnight (22 h–6 h)."""

    start: time
    end: time

    def occurrence(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The night (UTC start, end) that contains ``moment``, if any."""
        day = moment.astimezone(PARIS).date()
        for first in (day - timedelta(days=1), day):
            start, end = self._on(first)
            if start <= moment < end:
                return start, end
        return None

    def starts(self, first: date, last: date) -> list[datetime]:
        """Every night's start (UTC) from local day ``first`` to ``last``."""
        return [self._on(first + timedelta(days=n))[0] for n in range((last - first).days + 1)]

    def _on(self, day: date) -> tuple[datetime, datetime]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return (
            datetime.combine(day, self.start, tzinfo=PARIS).astimezone(UTC),
            datetime.combine(end_day, self.end, tzinfo=PARIS).astimezone(UTC),
        )


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    margin: timedelta = DEFAULT_MARGIN
    duration: timedelta = DEFAULT_DURATION
    night: NightWindow | None = None


@dataclass(frozen=True, slots=True)
class Busy:
    """A span when the counter must not be touched, and for what (the service's code)."""

    start: datetime
    end: datetime
    service: str


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # French, when not allowed: for the counter's row


def busy_spans(schedule: CounterSchedule) -> list[Busy]:
    """Every opening (slot, permanence, appointment window) and booked appointment (from its
    ringing tolerance), in UTC, by start."""
    early = timedelta(minutes=schedule.tolerance_min)
    spans = [
        Busy(o.start.astimezone(UTC), o.end.astimezone(UTC), o.service) for o in schedule.openings
    ]
    spans += [
        Busy((a.start - early).astimezone(UTC), a.end.astimezone(UTC), a.service)
        for a in schedule.appointments
    ]
    return sorted(spans, key=lambda b: (b.start, b.end, b.service))


def install_allowed(
    schedule: CounterSchedule | None, now: datetime, in_call: bool, policy: WindowPolicy
) -> Verdict:
    """May the counter whose schedule this is be sent an update at ``now``?"""
    if schedule is None:
        return Verdict(False, "Horaires du guichet inconnus.")
    if in_call:
        return Verdict(False, "Un appel est en cours.")
    return _closed_verdict(schedule, busy_spans(schedule), now.astimezone(UTC), policy)


def next_window(
    schedule: CounterSchedule | None, now: datetime, policy: WindowPolicy
) -> datetime | None:
    """The first moment from ``now`` when an install may start (calls aside), within the
    schedule's horizon; None if there is none. Exact: the earliest such moment is ``now``, the
    end of a busy span plus the margin, or the start of a night."""
    if schedule is None:
        return None
    now = now.astimezone(UTC)
    spans = busy_spans(schedule)
    candidates = {now} | {b.end + policy.margin for b in spans}
    if policy.night is not None:
        first = now.astimezone(PARIS).date() - timedelta(days=1)
        candidates |= set(policy.night.starts(first, schedule.until.astimezone(PARIS).date()))
    for moment in sorted(c for c in candidates if c >= now):
        if _closed_verdict(schedule, spans, moment, policy).allowed:
            return moment
    return None


def _closed_verdict(
    schedule: CounterSchedule, spans: list[Busy], now: datetime, policy: WindowPolicy
) -> Verdict:
    done = now + policy.duration
    if done > schedule.until:
        return Verdict(False, "Horaires inconnus au-delà de la fin de la mise à jour.")
    for span in spans:
        if span.start < done + policy.margin and now - policy.margin < span.end:
            return Verdict(False, _busy_reason(schedule, span, now))
    if policy.night is not None:
        night = policy.night.occurrence(now)
        if night is None or done > night[1]:
            start, end = hour_fr(_any(policy.night.start)), hour_fr(_any(policy.night.end))
            return Verdict(False, f"Hors de la plage de nuit ({start} – {end}).")
    return Verdict(True)


def _busy_reason(schedule: CounterSchedule, span: Busy, now: datetime) -> str:
    label = schedule.label(span.service)
    if span.start <= now < span.end:
        return f"Ouvert : {label} jusqu'à {hour_fr(span.end)}."
    if span.start >= now:
        return f"Trop proche d'une ouverture : {label} {when_fr(span.start, now)}."
    return f"Trop proche d'une fermeture : {label} jusqu'à {hour_fr(span.end)}."


def _any(at: time) -> datetime:
    """A wall-clock time on a day without a daylight-saving change, for ``hour_fr``."""
    return datetime.combine(date(2025, 1, 6), at, tzinfo=PARIS)
