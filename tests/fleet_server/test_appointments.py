"""Booking logic on both databases: free slots inside the appointment windows, no double
booking per counter or per agent, cancelling, and the erasure of the citizen's data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import make_engine, make_session_factory
from fleet_server.models import Appointment, AuditEntry, ScheduleException
from fleet_server.scheme import appointments
from tests.fleet_server.appointment_support import booking_day, reference_now, seed, slot
from tests.support.databases import migrate_fresh
from tests.support.webapp import PASSWORD


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    migrate_fresh(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


NOW = reference_now()  # a fixed Monday 10 h: nothing depends on when the tests run


def book(
    session: Session, hour: int, minute: int, agent: int | None, device: str = "x1"
) -> Appointment:
    day = booking_day(NOW)
    return appointments.book(
        session, device_id=device, service="caf", start=slot(day, hour, minute),
        agent_id=agent, citizen_name="  Léa  ", citizen_phone="06.12.34.56.78",
        created_by="accueil-x", now=NOW,
    )  # fmt: skip


def test_free_slots_are_the_window_cut_in_service_lengths(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PASSWORD)
    day = booking_day(NOW)
    with sessions() as session:
        found = appointments.free_slots(session, "x1", "caf", day, NOW)
        assert [(s.start, s.end) for s in found] == [
            (slot(day, 9), slot(day, 9, 30)),
            (slot(day, 9, 30), slot(day, 10)),
        ]
        assert appointments.free_slots(session, "x1", "msa", day, NOW) == []  # no window
        assert appointments.free_slots(session, "x1", "caf", day + timedelta(days=1), NOW) == []


def test_booking_takes_the_slot_and_refuses_double_bookings(
    sessions: sessionmaker[Session],
) -> None:
    ids = seed(sessions, PASSWORD)
    day = booking_day(NOW)
    with sessions.begin() as session:
        made = book(session, 9, 0, ids["agent-b"])
        assert (made.citizen_name, made.citizen_phone) == ("Léa", "06 12 34 56 78")
    with sessions.begin() as session:
        left = appointments.free_slots(session, "x1", "caf", day, NOW)
        assert [s.start for s in left] == [slot(day, 9, 30)]
        with pytest.raises(appointments.BookingError, match="déjà réservé à ce guichet"):
            book(session, 9, 0, None)
        # The same agent at the same time on another counter: refused too.
        with pytest.raises(appointments.BookingError, match="Cet agent a déjà un rendez-vous"):
            book(session, 9, 0, ids["agent-b"], device="y1")
        with pytest.raises(appointments.BookingError, match="ne répond pas pour ce service"):
            book(session, 9, 30, ids["agent-msa"])
        with pytest.raises(appointments.BookingError, match="pas proposé"):
            book(session, 11, 0, None)  # outside the window
        with pytest.raises(appointments.BookingError, match="téléphone invalide"):
            appointments.book(
                session, device_id="x1", service="caf", start=slot(day, 9, 30), agent_id=None,
                citizen_name="L", citizen_phone="12345", created_by="t", now=NOW,
            )  # fmt: skip
        assert book(session, 9, 0, ids["agent-a"], device="y1").device_id == "y1"


def test_a_closure_removes_the_slots(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PASSWORD)
    day = booking_day(NOW)
    with sessions.begin() as session:
        session.add(ScheduleException(service=None, site="Site X", day=day, kind="closed"))
    with sessions() as session:
        assert appointments.free_slots(session, "x1", "caf", day, NOW) == []
        assert len(appointments.free_slots(session, "y1", "caf", day, NOW)) == 2


def test_cancel_frees_the_slot(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PASSWORD)
    day = booking_day(NOW)
    with sessions.begin() as session:
        made = book(session, 9, 30, None)
        appointments.cancel(session, made, NOW)
        with pytest.raises(appointments.BookingError, match="déjà annulé"):
            appointments.cancel(session, made, NOW)
    with sessions() as session:
        assert len(appointments.free_slots(session, "x1", "caf", day, NOW)) == 2


def test_purge_erases_name_and_phone_after_the_retention(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, PASSWORD)
    with sessions.begin() as session:
        made_id = book(session, 9, 0, None).id
    with sessions() as session:
        end = session.get_one(Appointment, made_id).end
    retention = 30
    just_before = end + timedelta(days=retention) - timedelta(seconds=1)
    assert appointments.purge_expired(sessions, just_before, retention) == 0
    with sessions() as session:
        assert session.get_one(Appointment, made_id).citizen_name == "Léa"
    after = end + timedelta(days=retention)
    assert appointments.purge_expired(sessions, after, retention) == 1
    assert appointments.purge_expired(sessions, after, retention) == 0  # once
    with sessions() as session:
        row = session.get_one(Appointment, made_id)
        assert (row.citizen_name, row.citizen_phone) == (None, None)
        assert row.personal_data_erased_at == after
        assert (row.service, row.device_id, row.start) == ("caf", "x1", end - timedelta(minutes=30))
        details = session.scalars(select(AuditEntry.detail)).all()
        assert details == [{"count": 1}]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0612345678", "06 12 34 56 78"), ("+33 6 12 34 56 78", "06 12 34 56 78"),
     ("05-55-00-00-00", "05 55 00 00 00"), ("", None)],
)  # fmt: skip
def test_phone_numbers_are_read_loosely(raw: str, expected: str | None) -> None:
    assert appointments.normalise_phone(raw) == expected
