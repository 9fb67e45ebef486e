"""Maintenance windows (docs/updates.md): a counter installs only while closed, idle and, when
set, inside the night window — judged on the schedule the counter itself receives.

The pure part runs on hand-made schedules (a Caf slot on Tuesday 9–12, an appointment, a fixed
service, the night across the spring daylight-saving change) and on seeded random timetables
checked minute by minute against ``next_window``. The last tests run on the database: rules
written as an administrator does, ``counter_schedule`` and a simulated call.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import Device, ScheduleException, ScheduleRule
from fleet_server.updates.eligibility import install_verdicts
from fleet_server.updates.windows import (
    NightWindow,
    WindowPolicy,
    install_allowed,
    next_window,
)
from guichet.schedule import (
    PARIS,
    AccessMode,
    BookedAppointment,
    CounterSchedule,
    Opening,
    ServiceInfo,
)

POLICY = WindowPolicy(margin=timedelta(minutes=30), duration=timedelta(minutes=45))
NIGHT = WindowPolicy(
    margin=timedelta(minutes=30),
    duration=timedelta(minutes=45),
    night=NightWindow(time(22), time(6)),
)
CAF = ServiceInfo(code="caf", label="Caf", phone="3230")
TUESDAY = date(2025, 3, 18)


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def schedule(
    *openings: tuple[datetime, datetime],
    appointments: tuple[tuple[datetime, datetime], ...] = (),
    now: datetime | None = None,
    days: int = 14,
) -> CounterSchedule:
    generated = now or paris(TUESDAY, 0)
    return CounterSchedule(
        generated_at=generated,
        until=generated + timedelta(days=days),
        services=[CAF],
        openings=[
            Opening(service="caf", mode=AccessMode.SLOT, start=start, end=end)
            for start, end in openings
        ],
        appointments=[
            BookedAppointment(id=n, service="caf", start=start, end=end)
            for n, (start, end) in enumerate(appointments, start=1)
        ],
    )


CAF_TUESDAY = schedule((paris(TUESDAY, 9), paris(TUESDAY, 12)))


@pytest.mark.parametrize(
    ("hour", "minute", "allowed", "reason"),
    [
        (7, 45, True, None),  # done at 8 h 30, half an hour before 9 h
        (7, 46, False, "Trop proche d'une ouverture : Caf aujourd'hui 9 h."),
        (9, 0, False, "Ouvert : Caf jusqu'à 12 h."),
        (11, 59, False, "Ouvert : Caf jusqu'à 12 h."),
        (12, 29, False, "Trop proche d'une fermeture : Caf jusqu'à 12 h."),
        (12, 30, True, None),
    ],
)
def test_a_caf_slot_on_tuesday_keeps_the_update_away(
    hour: int, minute: int, allowed: bool, reason: str | None
) -> None:
    verdict = install_allowed(CAF_TUESDAY, paris(TUESDAY, hour, minute), False, POLICY)
    assert verdict.allowed is allowed
    assert verdict.reason == reason


def test_a_call_in_progress_keeps_a_closed_counter_waiting() -> None:
    now = paris(TUESDAY, 14)
    assert install_allowed(CAF_TUESDAY, now, False, POLICY).allowed
    busy = install_allowed(CAF_TUESDAY, now, True, POLICY)
    assert not busy.allowed
    assert busy.reason == "Un appel est en cours."


def test_the_next_window_is_half_an_hour_after_the_slot() -> None:
    assert next_window(CAF_TUESDAY, paris(TUESDAY, 10), POLICY) == paris(TUESDAY, 12, 30)
    assert next_window(CAF_TUESDAY, paris(TUESDAY, 7), POLICY) == paris(TUESDAY, 7)


def test_a_booked_appointment_counts_from_its_ringing_tolerance() -> None:
    booked = schedule(appointments=((paris(TUESDAY, 15), paris(TUESDAY, 15, 30)),))
    # Rings from 14 h 50 (10 min early); minus the margin and the duration: 13 h 35 at the latest.
    assert install_allowed(booked, paris(TUESDAY, 13, 35), False, POLICY).allowed
    assert not install_allowed(booked, paris(TUESDAY, 13, 36), False, POLICY).allowed
    assert next_window(booked, paris(TUESDAY, 13, 36), POLICY) == paris(TUESDAY, 16)


def test_a_counter_open_at_all_times_never_gets_a_window() -> None:
    start = paris(TUESDAY, 0)
    always = schedule((start - timedelta(days=1), start + timedelta(days=14)), now=start)
    assert next_window(always, start, POLICY) is None
    assert not install_allowed(always, start, False, POLICY).allowed


def test_nothing_is_promised_past_the_schedule_horizon() -> None:
    short = schedule(now=paris(TUESDAY, 0), days=1)
    end = paris(TUESDAY, 0) + timedelta(days=1)
    assert install_allowed(short, end - timedelta(minutes=45), False, POLICY).allowed
    late = install_allowed(short, end - timedelta(minutes=44), False, POLICY)
    assert late.reason == "Horaires inconnus au-delà de la fin de la mise à jour."
    assert next_window(None, end, POLICY) is None
    assert install_allowed(None, end, False, POLICY).reason == "Horaires du guichet inconnus."


def test_the_night_window_holds_an_update_until_22_h_and_ends_it_by_6_h() -> None:
    day = install_allowed(CAF_TUESDAY, paris(TUESDAY, 14), False, NIGHT)
    assert day.reason == "Hors de la plage de nuit (22 h – 6 h)."
    assert next_window(CAF_TUESDAY, paris(TUESDAY, 14), NIGHT) == paris(TUESDAY, 22)
    wednesday = TUESDAY + timedelta(days=1)
    assert install_allowed(CAF_TUESDAY, paris(wednesday, 5, 15), False, NIGHT).allowed
    assert not install_allowed(CAF_TUESDAY, paris(wednesday, 5, 16), False, NIGHT).allowed


def test_the_night_across_the_spring_clock_change_keeps_its_wall_clock_hours() -> None:
    saturday = date(2025, 3, 29)  # the clocks go forward at 2 h on Sunday 30 March
    sunday = saturday + timedelta(days=1)
    closed = schedule(now=paris(saturday, 12), days=3)
    assert next_window(closed, paris(saturday, 12), NIGHT) == paris(saturday, 22)
    assert install_allowed(closed, paris(sunday, 5, 15), False, NIGHT).allowed
    assert not install_allowed(closed, paris(sunday, 5, 16), False, NIGHT).allowed
    assert paris(sunday, 6).astimezone(UTC) == datetime(2025, 3, 30, 4, tzinfo=UTC)


# --- next_window against every minute, on seeded random timetables -----------------------------


def _random_case(rng: random.Random) -> tuple[CounterSchedule, datetime, WindowPolicy]:
    start = paris(date(2025, 3, 27), rng.randrange(24), rng.randrange(0, 60, 5))
    spans = []
    for _ in range(rng.randrange(0, 8)):
        begin = start + timedelta(minutes=rng.randrange(-600, 3 * 1440, 15))
        spans.append((begin, begin + timedelta(minutes=rng.randrange(15, 480, 15))))
    night = None
    if rng.random() < 0.5:
        night = NightWindow(time(rng.randrange(18, 24)), time(rng.randrange(3, 8)))
    policy = WindowPolicy(
        margin=timedelta(minutes=rng.randrange(0, 90, 5)),
        duration=timedelta(minutes=rng.randrange(5, 120, 5)),
        night=night,
    )
    return schedule(*spans, now=start, days=3), start, policy


@pytest.mark.parametrize("seed", range(30))
def test_next_window_is_the_first_allowed_minute(seed: int) -> None:
    timetable, now, policy = _random_case(random.Random(seed))
    found = next_window(timetable, now, policy)
    minute, last = now, timetable.until
    while minute <= last and (found is None or minute < found):
        assert not install_allowed(timetable, minute, False, policy).allowed, minute
        minute += timedelta(minutes=1)
    if found is not None:
        assert found >= now
        assert install_allowed(timetable, found, False, policy).allowed


# --- on the database: the timetable as an administrator writes it, and a simulated call --------

MAIRIE, CIAS = "mairie-01", "cias-01"


def _seed(session: Session) -> None:
    session.add(Device(id=MAIRIE, site="Monts de Châlus", name="Mairie"))
    session.add(Device(id=CIAS, site="Vallée de la Gorre", name="CIAS"))
    session.add(
        ScheduleRule(
            service="caf",
            mode="slot",
            weekday=TUESDAY.weekday(),
            start_time=time(9),
            end_time=time(12),
            site="Monts de Châlus",
        )
    )
    session.add(  # a France Travail permanence on this Tuesday afternoon, by a one-off opening
        ScheduleException(
            service="france-travail",
            device_id=CIAS,
            day=TUESDAY,
            kind="open",
            start_time=time(14),
            end_time=time(17),
        )
    )


def test_a_counter_in_an_opening_or_a_call_waits_until_it_is_closed_and_idle(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        _seed(session)
    calls: set[str] = set()  # the counters in a call, as CallManager.in_call says

    def verdicts(hour: int, minute: int = 0) -> dict[str, str | None]:
        with sessions() as session:
            found = install_verdicts(
                session, [MAIRIE, CIAS], paris(TUESDAY, hour, minute), calls.__contains__, POLICY
            )
        return {d: None if v.allowed else v.reason for d, v in found.items()}

    assert verdicts(7) == {MAIRIE: None, CIAS: None}
    assert verdicts(10) == {MAIRIE: "Ouvert : Caf jusqu'à 12 h.", CIAS: None}
    calls.add(CIAS)  # a citizen calls from the CIAS's counter
    assert verdicts(10)[CIAS] == "Un appel est en cours."
    assert verdicts(12, 30) == {MAIRIE: None, CIAS: "Un appel est en cours."}
    calls.clear()  # the call ended
    assert verdicts(12, 30) == {MAIRIE: None, CIAS: None}
    assert verdicts(13)[CIAS] == "Trop proche d'une ouverture : France Travail aujourd'hui 14 h."
    assert verdicts(15) == {MAIRIE: None, CIAS: "Ouvert : France Travail jusqu'à 17 h."}
    assert verdicts(17, 30) == {MAIRIE: None, CIAS: None}


def test_an_unknown_counter_is_never_sent_an_update(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        found = install_verdicts(
            session, ["absent-01"], paris(TUESDAY, 3), lambda _d: False, POLICY
        )
    assert found["absent-01"].reason == "Horaires du guichet inconnus."
