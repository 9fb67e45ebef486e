"""Seeds for the appointment, reception and calendar tests: two sites, a Caf appointment
window on a coming working day, Caf agents and a reception user per site; and a fixed
reference moment so that a test's outcome does not depend on the time of day it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import Device, ScheduleRule, User
from fleet_server.scheme.schedules import local, public_holiday
from fleet_server.security import auth

SITE_X, SITE_Y = "Site X", "Site Y"
WINDOW = (time(9), time(10))  # two 30-minute Caf slots: 9 h and 9 h 30
REFERENCE_TIME = time(10)  # far from midnight either side, after the Caf window
WEEK = 7


def reference_now(today: date | None = None) -> datetime:
    """10 h (Paris) on the first Monday at least a week after ``today`` (default: the real
    date) whose seven days hold no public holiday: a fixed clock for the tests.

    Ahead of the real date, so the app's own background jobs (erasing the data of past
    appointments) leave what the test books alone; a whole ordinary week from a Monday, so a
    week's view shows seven days of every weekly rule.
    """
    day = (today or datetime.now(UTC).date()) + timedelta(days=WEEK)
    while day.weekday() != 0 or any(public_holiday(day + timedelta(n)) for n in range(WEEK)):
        day += timedelta(days=1)
    return local(day, REFERENCE_TIME).astimezone(UTC)


def booking_day(now: datetime | None = None) -> date:
    """A Tuesday at least two days ahead that is not a public holiday."""
    day = (now or datetime.now(UTC)).date() + timedelta(days=2)
    while day.weekday() != 1 or public_holiday(day):
        day += timedelta(days=1)
    return day


def slot(day: date, hour: int, minute: int = 0) -> datetime:
    return local(day, time(hour, minute))


def seed(sessions: sessionmaker[Session], password: str) -> dict[str, int]:
    """Counters x1 (site X), y1 (site Y); the Caf window every Tuesday; users. Their ids."""
    with sessions.begin() as session:
        session.add(Device(id="x1", site=SITE_X, name="Mairie X", state="online"))
        session.add(Device(id="y1", site=SITE_Y, name="Mairie Y", state="offline"))
        session.flush()
        session.add(
            ScheduleRule(
                service="caf", mode="appointment", weekday=1,
                start_time=WINDOW[0], end_time=WINDOW[1],
            )
        )  # fmt: skip
        ids = {}
        for name, role, service, site in (
            ("agent-a", "agent", "caf", None),
            ("agent-b", "agent", "caf", None),
            ("agent-msa", "agent", "msa", None),
            ("accueil-x", "reception", None, SITE_X),
            ("accueil-y", "reception", None, SITE_Y),
            ("admin", "admin", None, None),
        ):
            user: User = auth.upsert_user(
                session, name, password, role=role, service=service, site=site
            )
            session.flush()
            ids[name] = user.id
    return ids
