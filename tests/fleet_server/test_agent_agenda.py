"""The agent console's "Mes prochains rendez-vous et permanences" on the real app and both
databases: the citizen's first name goes to the booked agent only, never their phone.

The console reads the wall clock (its panel covers the next two weeks), so the appointments
are booked on the coming Tuesday at least two days ahead: always inside that window."""

from __future__ import annotations

from fleet_server.scheme import appointments
from guichet.contract import utcnow
from tests.fleet_server.appointment_support import booking_day, seed, slot
from tests.support.webapp import PASSWORD, WebApp, running_app


def agenda_panel(app: WebApp, username: str) -> str:
    """The agenda panel of ``username``'s console, as HTML."""
    app.client.cookies.clear()
    assert app.login(username).status_code == 303
    page = app.client.get("/agent")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    panel: str = page.text.split('id="agenda"', 1)[1].split("</section>", 1)[0]
    assert "Mes prochains rendez-vous et permanences" in panel
    return panel


def test_only_the_booked_agent_sees_the_citizens_first_name(db_url: str) -> None:
    with running_app(db_url) as app:
        ids = seed(app.sessions, PASSWORD)
        now = utcnow()
        day = booking_day(now)
        with app.sessions.begin() as session:
            for minute, agent, name in ((0, ids["agent-b"], "Léa M."), (30, None, "Noé")):
                appointments.book(
                    session, device_id="x1", service="caf", start=slot(day, 9, minute),
                    agent_id=agent, citizen_name=name, citizen_phone="06 12 34 56 78",
                    created_by="accueil-x", now=now,
                )  # fmt: skip

        booked = agenda_panel(app, "agent-b")
        assert booked.count("Rendez-vous Caf") == 1
        assert "Mairie X (Site X)" in booked
        assert "usager : Léa M." in booked
        assert "06 12" not in booked  # the phone is for reception only

        other = agenda_panel(app, "agent-a")  # same service, not booked
        assert "Léa" not in other
        assert "Rendez-vous Caf" not in other
        assert "Rien de prévu dans les deux semaines à venir." in other

        # Booked for "any agent of the service": nobody's own appointment, no name shown.
        assert "Noé" not in booked
        assert "Noé" not in other
