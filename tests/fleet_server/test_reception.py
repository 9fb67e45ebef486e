"""The reception page on the real app and both databases: booking a free slot, a double
booking refused in French, cancelling, and a site's staff kept to their own site.

The page's clock is pinned to ``NOW`` (a Monday, 10 h in Paris, of a week without a public
holiday) so that nothing depends on the time of day the tests run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import cast

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from fleet_server.models import Alert, Appointment, AuditEntry, Device, ScheduleRule, User
from fleet_server.web.reception import request_now
from guichet.schedule import PARIS
from tests.fleet_server.appointment_support import (
    SITE_X,
    SITE_Y,
    booking_day,
    reference_now,
    seed,
    slot,
)
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app

NOW = reference_now()


@pytest.fixture
def web(db_url: str) -> Iterator[tuple[WebApp, dict[str, int]]]:
    with running_app(db_url) as app:
        pin_clock(app, NOW)
        ids = seed(app.sessions, PASSWORD)
        assert app.login("accueil-x").status_code == 303
        yield app, ids


def pin_clock(web: WebApp, moment: datetime) -> None:
    """Make the reception pages read ``moment`` as the time of every request."""
    cast(FastAPI, web.client.app).dependency_overrides[request_now] = lambda: moment


def csrf(web: WebApp) -> str:
    match = CSRF_RE.search(web.client.get("/reception").text)
    assert match
    return match.group(1)


def booking(
    web: WebApp, hour: int, minute: int, agent: int | None, device: str = "x1"
) -> dict[str, str]:
    start = slot(booking_day(NOW), hour, minute).isoformat()
    return {
        "device_id": device, "service": "caf", "start": start, "agent_id": str(agent or ""),
        "citizen_name": "Léa M.", "citizen_phone": "06 12 34 56 78", "csrf_token": csrf(web),
    }  # fmt: skip


def test_booking_a_free_slot_then_a_double_booking_is_refused(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    app, ids = web
    day = booking_day(NOW).isoformat()
    search = app.client.get("/reception", params={"service": "caf", "guichet": "x1", "jour": day})
    assert search.status_code == 200
    assert search.text.count('<option value="' + slot(booking_day(NOW), 9).isoformat()) == 1
    assert "agent-b" in search.text

    done = app.client.post("/reception/appointments", data=booking(app, 9, 0, ids["agent-b"]))
    assert [r.status_code for r in done.history] == [303]  # post/redirect/get
    assert (done.status_code, done.url.path) == (200, "/reception")
    assert "Rendez-vous réservé le mardi " in done.text
    assert "de 9 h à 9 h 30 au guichet Mairie X." in done.text
    assert "Léa M." in done.text
    assert "06 12 34 56 78" in done.text
    with app.sessions() as session:
        row = session.scalars(select(Appointment)).one()
        assert (row.device_id, row.agent_user_id, row.created_by) == (
            "x1",
            ids["agent-b"],
            "accueil-x",
        )

    again = app.client.post("/reception/appointments", data=booking(app, 9, 0, None))
    assert [r.status_code for r in again.history] == [303]
    assert again.url.path == "/reception"
    assert again.url.params["guichet"] == "x1"  # back on the slots of that counter and day
    assert "Ce créneau est déjà réservé à ce guichet." in again.text
    form = again.text.split('id="booking-form"')[1]
    assert 'name="citizen_name" value="Léa M."' in form  # what was typed, kept
    assert 'name="citizen_phone" value="06 12 34 56 78"' in form
    left = app.client.get("/reception", params={"service": "caf", "guichet": "x1", "jour": day})
    assert slot(booking_day(NOW), 9).isoformat() not in left.text
    assert slot(booking_day(NOW), 9, 30).isoformat() in left.text

    with app.sessions() as session:
        details = [str(d) for d in session.scalars(select(AuditEntry.detail))]
    assert len(details) == 1
    assert all("Léa" not in d and "06 12" not in d for d in details)


def test_cancel_frees_the_slot(web: tuple[WebApp, dict[str, int]]) -> None:
    app, _ids = web
    app.client.post("/reception/appointments", data=booking(app, 9, 30, None))
    with app.sessions() as session:
        appointment_id = session.scalars(select(Appointment.id)).one()
    done = app.client.post(
        f"/reception/appointments/{appointment_id}/cancel", data={"csrf_token": csrf(app)}
    )
    assert "de 9 h 30 à 10 h annulé." in done.text
    assert f'data-appointment="{appointment_id}"' not in done.text
    with app.sessions() as session:
        assert session.get_one(Appointment, appointment_id).cancelled_at is not None
    twice = app.client.post(
        f"/reception/appointments/{appointment_id}/cancel", data={"csrf_token": csrf(app)}
    )
    assert "Ce rendez-vous est déjà annulé." in twice.text
    again = app.client.post("/reception/appointments", data=booking(app, 9, 30, None))
    assert "Rendez-vous réservé le " in again.text


def test_reception_of_site_x_cannot_see_or_book_at_site_y(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    app, _ids = web
    page = app.client.get("/reception", params={"site": "Site Y"})
    assert "Mairie X" in page.text
    assert "Mairie Y" not in page.text
    day = booking_day(NOW).isoformat()
    peek = app.client.get("/reception", params={"service": "caf", "guichet": "y1", "jour": day})
    assert peek.status_code == 404
    refused = app.client.post("/reception/appointments", data=booking(app, 9, 0, None, "y1"))
    assert refused.status_code == 404
    with app.sessions() as session:
        assert session.scalars(select(Appointment)).all() == []

    # An appointment at site Y, booked by its own reception, cannot be cancelled from X.
    app.client.cookies.clear()
    assert app.login("accueil-y").status_code == 303
    app.client.post("/reception/appointments", data=booking(app, 9, 0, None, "y1"))
    with app.sessions() as session:
        appointment_id = session.scalars(select(Appointment.id)).one()
    app.client.cookies.clear()
    assert app.login("accueil-x").status_code == 303
    assert "Léa M." not in app.client.get("/reception").text
    cancel = app.client.post(
        f"/reception/appointments/{appointment_id}/cancel", data={"csrf_token": csrf(app)}
    )
    assert cancel.status_code == 404
    with app.sessions() as session:
        assert session.get_one(Appointment, appointment_id).cancelled_at is None


def test_the_page_shows_the_week_and_the_counters_state(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    app, _ids = web
    with app.sessions.begin() as session:  # an MSA walk-in slot every day of the week
        for weekday in range(7):
            session.add(ScheduleRule(service="msa", mode="slot", site=SITE_X, weekday=weekday,
                                     start_time=time(0), end_time=time(23, 59)))  # fmt: skip
    page = app.client.get("/reception").text
    assert 'data-device-id="x1" data-state="online"' in page
    today, week = page.split('id="week-openings"')
    assert today.count("0 h – 23 h 59") == 1  # open since midnight, not over at 10 h
    assert week.count("0 h – 23 h 59") == 6  # the six days after
    tomorrow = NOW.astimezone(PARIS).date() + timedelta(days=1)
    assert f"Demain, mardi {tomorrow.day} " in week
    assert "accès libre" in page


def test_the_page_reads_the_time_of_the_request(web: tuple[WebApp, dict[str, int]]) -> None:
    """Late in the evening today's all-day slot is over: the page says so, whatever the wall
    clock (the old test counted on a slot "today" and failed in the last minute before
    midnight)."""
    app, _ids = web
    with app.sessions.begin() as session:
        session.add(ScheduleRule(service="msa", mode="slot", site=SITE_X, weekday=0,
                                 start_time=time(0), end_time=time(23, 59)))  # fmt: skip
    late = datetime.combine(NOW.astimezone(PARIS).date(), time(23, 59, 30), PARIS)
    pin_clock(app, late.astimezone(UTC))
    page = app.client.get("/reception").text
    assert "Plus aucune ouverture aujourd'hui." in page
    assert "0 h – 23 h 59" not in page  # Monday only: next week is past the seven days


def test_booking_refuses_an_inactive_agent(web: tuple[WebApp, dict[str, int]]) -> None:
    """Issue 12: a deactivated agent (still listed in an old form) cannot be booked."""
    app, ids = web
    with app.sessions.begin() as session:
        session.execute(update(User).where(User.id == ids["agent-b"]).values(active=False))
    refused = app.client.post("/reception/appointments", data=booking(app, 9, 0, ids["agent-b"]))
    assert [r.status_code for r in refused.history] == [303]
    assert "Cet agent ne répond pas pour ce service." in refused.text
    with app.sessions() as session:
        assert session.scalars(select(Appointment)).all() == []


def test_reception_summary_counts_only_its_own_site(web: tuple[WebApp, dict[str, int]]) -> None:
    """Issue 12: the summary cards of a reception user count their site's counters only."""
    app, _ids = web
    with app.sessions.begin() as session:
        for i in range(7):  # elsewhere: seven more counters online, one alert
            session.add(Device(id=f"z{i}", site="Site Z", name=f"Z{i}", state="online"))
        session.flush()
        session.add(Alert(device_id="z0", kind="offline", raised_at=NOW))
    for path in ("/", "/fleet/rows"):
        page = app.client.get(path).text
        counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
        assert counts["online"] == "1", path  # x1 only: y1 and the z's are other sites
        assert counts.get("offline", "0") == "0", path
        assert counts["alerts"] == "0", path


def test_an_administrator_moves_a_counter_to_another_site(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    """The site decides which reception sees a counter (issue 12, finding 3): only an
    administrator (or enrolment) sets it; the change is audited and takes effect at once."""
    app, _ids = web
    assert "Mairie Y" not in app.client.get("/reception").text
    app.client.cookies.clear()
    app.add_user("admin", "admin")
    assert app.login("admin").status_code == 303
    token = app.csrf("/devices/y1")
    empty = app.client.post(
        "/devices/y1/identity", data={"site": "  ", "name": "Annexe", "csrf_token": token}
    )
    assert [r.status_code for r in empty.history] == [303]  # back to the counter's page
    assert "Le site est obligatoire" in empty.text
    assert 'name="name" value="Annexe"' in empty.text  # what was typed, kept
    moved = app.client.post(
        "/devices/y1/identity",
        data={"site": f"  {SITE_X} ", "name": "Mairie Y, annexe", "csrf_token": token},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    with app.sessions() as session:
        device = session.get_one(Device, "y1")
        assert (device.site, device.name) == (SITE_X, "Mairie Y, annexe")
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.identity")
        ).one()
        assert entry.target == "y1"
    app.client.cookies.clear()
    assert app.login("accueil-x").status_code == 303
    assert "Mairie Y, annexe" in app.client.get("/reception").text
    app.client.cookies.clear()
    assert app.login("accueil-y").status_code == 303
    refused = app.client.post(
        "/devices/x1/identity", data={"site": SITE_Y, "csrf_token": csrf(app)}
    )
    assert refused.status_code in (403, 404)
    with app.sessions() as session:
        assert session.get_one(Device, "x1").site == SITE_X
