"""The agent's calendar feed: made from the console, parsed with ``icalendar``, with the
agent's appointments and permanences, no citizen data, and 404 for a wrong token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import time

import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from fleet_server.models import Permanence, User
from fleet_server.security.auth import token_digest
from tests.fleet_server.appointment_support import booking_day, seed, slot
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app

URL_RE = re.compile(r'id="agenda-url">http://testserver(/ical/[^<]+\.ics)<')


@pytest.fixture
def web(db_url: str) -> Iterator[tuple[WebApp, dict[str, int]]]:
    with running_app(db_url) as app:
        ids = seed(app.sessions, PASSWORD)
        day = booking_day()
        with app.sessions.begin() as session:
            session.add(Permanence(service="caf", site="Site X", day=day, half="pm",
                                   start_time=time(14), end_time=time(17),
                                   agents=[ids["agent-b"]]))  # fmt: skip
        assert app.login("accueil-x").status_code == 303
        token = CSRF_RE.search(app.client.get("/reception").text)
        assert token
        for hour, agent in ((9, "agent-b"), (9, "agent-a")):
            data = {
                "device_id": "x1" if agent == "agent-b" else "y1", "service": "caf",
                "start": slot(day, hour).isoformat(), "agent_id": str(ids[agent]),
                "citizen_name": "Zoé Secret", "citizen_phone": "0698765432",
                "csrf_token": token.group(1),
            }  # fmt: skip
            if agent == "agent-a":
                app.client.cookies.clear()
                app.login("accueil-y")
                token = CSRF_RE.search(app.client.get("/reception").text)
                assert token
                data["csrf_token"] = token.group(1)
            assert (
                "Rendez-vous réservé le "
                in app.client.post("/reception/appointments", data=data).text
            )
        app.client.cookies.clear()
        yield app, ids


def feed_path(app: WebApp) -> str:
    assert app.login("agent-b").status_code == 303
    console = app.client.get("/agent").text
    assert "Mes prochains rendez-vous et permanences" in console
    assert "Zoé Secret" in console  # the console (behind the login) shows the first name
    token = CSRF_RE.search(console)
    assert token
    made = app.client.post("/agent/agenda-link", data={"csrf_token": token.group(1)})
    match = URL_RE.search(made.text)
    assert match, made.text[:500]
    return match.group(1)


def test_feed_has_the_agents_appointments_and_permanences_and_no_citizen_data(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    app, ids = web
    path = feed_path(app)
    app.client.cookies.clear()  # a calendar application: no session
    response = app.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert b"Zo" not in response.content
    assert b"98 76" not in response.content
    assert b"0698765432" not in response.content
    calendar = Calendar.from_ical(response.content)
    events = sorted((str(e["summary"]), e.decoded("dtstart")) for e in calendar.walk("VEVENT"))
    day = booking_day()
    assert events == [
        ("Permanence Caf", slot(day, 14)),
        ("Rendez-vous Caf en visio", slot(day, 9)),
    ]
    with app.sessions() as session:
        stored = session.scalars(
            select(User.ical_token_sha256).where(User.id == ids["agent-b"])
        ).one()
    assert stored == token_digest(path.removeprefix("/ical/").removesuffix(".ics"))


def test_a_wrong_or_replaced_token_is_404(web: tuple[WebApp, dict[str, int]]) -> None:
    app, _ids = web
    first = feed_path(app)
    second_token = CSRF_RE.search(app.client.get("/agent").text)
    assert second_token
    second = URL_RE.search(
        app.client.post("/agent/agenda-link", data={"csrf_token": second_token.group(1)}).text
    )
    assert second
    app.client.cookies.clear()
    assert app.client.get(first).status_code == 404  # replaced
    assert app.client.get(second.group(1)).status_code == 200
    assert app.client.get("/ical/gpi_" + "x" * 43 + ".ics").status_code == 404
    assert app.client.get("/ical/nothing.ics").status_code == 404


@pytest.mark.parametrize("change", [{"active": False}, {"role": "auditor", "service": None}])
def test_the_feed_stops_when_its_user_is_no_longer_an_active_agent(
    web: tuple[WebApp, dict[str, int]], change: dict[str, object]
) -> None:
    """Issue 12: the URL is a bearer secret; a former agent's copy must stop working."""
    app, ids = web
    path = feed_path(app)
    assert app.client.get(path).status_code == 200
    with app.sessions.begin() as session:
        session.execute(update(User).where(User.id == ids["agent-b"]).values(**change))
    assert app.client.get(path).status_code == 404
