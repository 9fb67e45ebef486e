"""The administrators' timetable page: service settings, weekly rules, permanences and
exceptions per scope, the preview of a counter's openings and the public holidays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import cast

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fleet_server.models import AuditEntry, Permanence, ScheduleException, ScheduleRule, Service
from fleet_server.web.reception import request_now
from guichet.schedule import PARIS, day_fr
from tests.fleet_server.appointment_support import booking_day, reference_now, seed
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app


@pytest.fixture
def web(db_url: str) -> Iterator[tuple[WebApp, dict[str, int]]]:
    with running_app(db_url) as app:
        ids = seed(app.sessions, PASSWORD)
        assert app.login("admin").status_code == 303
        yield app, ids


def token(app: WebApp) -> str:
    match = CSRF_RE.search(app.client.get("/admin/schedules").text)
    assert match
    return match.group(1)


def test_rules_permanences_exceptions_and_the_preview(web: tuple[WebApp, dict[str, int]]) -> None:
    app, ids = web
    day = booking_day()
    rule = {"service": "msa", "mode": "slot", "scope": "site:Site X", "weekday": "2",
            "start_time": "14:00", "end_time": "16:30", "csrf_token": token(app)}  # fmt: skip
    assert app.client.post("/admin/schedules/rules", data=rule).status_code == 200
    duty = {"service": "caf", "scope": "device:x1", "day": day.isoformat(), "half": "pm",
            "agents": [str(ids["agent-b"])], "csrf_token": token(app)}  # fmt: skip
    assert app.client.post("/admin/schedules/permanences", data=duty).status_code == 200
    closed = {"kind": "closed", "scope": "all", "day": day.isoformat(), "service": "",
              "start_time": "09:00", "end_time": "09:30", "note": "Réunion",
              "csrf_token": token(app)}  # fmt: skip
    assert app.client.post("/admin/schedules/exceptions", data=closed).status_code == 200
    settings = {"phone": "05 55 00 00 00", "appointment_minutes": "20", "fallback_s": "45",
                "position": "1", "csrf_token": token(app)}  # fmt: skip
    assert app.client.post("/admin/schedules/services/caf", data=settings).status_code == 200

    with app.sessions() as session:
        msa = session.scalars(select(ScheduleRule).where(ScheduleRule.service == "msa")).one()
        assert (msa.site, msa.device_id, msa.weekday, msa.start_time, msa.end_time) == (
            "Site X", None, 2, time(14), time(16, 30))  # fmt: skip
        perm = session.scalars(select(Permanence)).one()
        assert (perm.device_id, perm.start_time, perm.end_time, perm.agents) == (
            "x1", time(14), time(17), [ids["agent-b"]])  # fmt: skip
        exc = session.scalars(select(ScheduleException)).one()
        assert (exc.kind, exc.service, exc.site, exc.start_time) == ("closed", None, None, time(9))
        caf = session.get_one(Service, "caf")
        assert (caf.phone, caf.appointment_minutes, caf.fallback_s) == ("05 55 00 00 00", 20, 45)
        assert session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == [
            "schedule.rule_create", "schedule.permanence_create",
            "schedule.exception_create", "service.update",
        ]  # fmt: skip

    page = app.client.get("/admin/schedules", params={"guichet": "x1"}).text
    assert "14 h – 17 h" in page  # the permanence, in the preview
    assert "9 h 30 – 10 h" in page  # the Caf window after the 9 h – 9 h 30 closure
    assert "MSA : " in page  # the closed counter's next-opening lines
    assert "Jours fériés à venir" in page

    with app.sessions() as session:
        rule_id = msa.id
    deleted = app.client.post(
        f"/admin/schedules/rules/{rule_id}/delete", data={"csrf_token": token(app)}
    )
    assert deleted.status_code == 200
    with app.sessions() as session:
        assert session.get(ScheduleRule, rule_id) is None


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/admin/schedules/rules", {"service": "caf", "mode": "slot", "scope": "all",
         "weekday": "0", "start_time": "12:00", "end_time": "10:00"},
         "L'heure de fin doit suivre l'heure de début."),
        ("/admin/schedules/rules", {"service": "caf", "mode": "slot", "scope": "device:nope",
         "weekday": "0", "start_time": "10:00", "end_time": "12:00"}, "Portée inconnue"),
        ("/admin/schedules/permanences", {"service": "caf", "scope": "all", "day": "2030-01-08",
         "half": "am", "agents": "0"}, "ne répond pas pour ce service"),
        ("/admin/schedules/exceptions", {"kind": "open", "scope": "all", "day": "2030-01-08"},
         "Une ouverture exceptionnelle a un service et des heures."),
    ],
)  # fmt: skip
def test_invalid_forms_are_refused_in_french(
    web: tuple[WebApp, dict[str, int]], path: str, data: dict[str, str], message: str
) -> None:
    app, ids = web
    if data.get("agents") == "0":
        data = data | {"agents": str(ids["agent-msa"])}
    refused = app.client.post(path, data=data | {"csrf_token": token(app)})
    assert [r.status_code for r in refused.history] == [303]  # post/redirect/get
    assert (refused.status_code, refused.url.path) == (200, "/admin/schedules")
    assert message in refused.text.replace("&#39;", "'")
    with app.sessions() as session:
        assert session.scalars(select(AuditEntry)).all() == []
        assert len(session.scalars(select(ScheduleRule)).all()) == 1  # the seeded one


def test_public_holidays_are_listed(web: tuple[WebApp, dict[str, int]]) -> None:
    app, _ids = web
    page = app.client.get("/admin/schedules").text
    assert datetime.now(UTC).year >= 2024
    # Within 120 days there is always at least one French public holiday.
    section = page.split('id="holidays"')[1]
    assert section.count("<li>") >= 1


NOW = reference_now()  # a Monday, 10 h in Paris


@pytest.fixture
def pinned(web: tuple[WebApp, dict[str, int]]) -> tuple[WebApp, dict[str, int]]:
    """The page and its forms read ``NOW`` as the time of every request."""
    app, ids = web
    cast(FastAPI, app.client.app).dependency_overrides[request_now] = lambda: NOW
    return app, ids


def test_a_permanence_in_the_past_is_refused_with_the_form_kept(
    pinned: tuple[WebApp, dict[str, int]],
) -> None:
    """Issue 17: a past permanence was accepted silently and never listed."""
    app, _ids = pinned
    today = NOW.astimezone(PARIS).date()
    past = [
        {"day": (today - timedelta(days=3)).isoformat(), "half": "am"},
        {"day": today.isoformat(), "half": "am", "start_time": "08:00", "end_time": "09:30"},
    ]
    for fields in past:
        data = {"service": "caf", "scope": "device:x1", "csrf_token": token(app)} | fields
        refused = app.client.post("/admin/schedules/permanences", data=data)
        assert "Cette permanence serait déjà passée" in refused.text.replace("&#39;", "'")
        form = refused.text.split('id="permanence-form"')[1].split("</form>")[0]
        assert f'name="day" value="{fields["day"]}"' in form
        assert '<option value="device:x1" selected>' in form
    with app.sessions() as session:
        assert session.scalars(select(Permanence)).all() == []
        assert session.scalars(select(AuditEntry)).all() == []

    # Under way this morning (9 h – 12 h at 10 h): accepted, with no agent, and listed.
    data = {"service": "caf", "scope": "device:x1", "day": today.isoformat(), "half": "am",
            "csrf_token": token(app)}  # fmt: skip
    done = app.client.post("/admin/schedules/permanences", data=data)
    notice = f"Permanence ajoutée : Caf, le {day_fr(today)} "
    assert notice in done.text
    assert "de 9 h à 12 h, guichet Mairie X." in done.text
    listed = done.text.split('id="permanences"')[1].split("</table>")[0]
    assert "tout agent du service" in listed
    assert "just-changed" in listed


def test_a_permanence_far_ahead_is_listed(pinned: tuple[WebApp, dict[str, int]]) -> None:
    app, _ids = pinned
    far = NOW.astimezone(PARIS).date() + timedelta(days=200)
    data = {"service": "caf", "scope": "all", "day": far.isoformat(), "half": "pm",
            "csrf_token": token(app)}  # fmt: skip
    page = app.client.post("/admin/schedules/permanences", data=data).text
    with app.sessions() as session:
        row = session.scalars(select(Permanence)).one()
    assert f'data-permanence="{row.id}"' in page


def test_a_closure_in_the_past_is_refused_and_a_coming_one_confirmed(
    pinned: tuple[WebApp, dict[str, int]],
) -> None:
    app, _ids = pinned
    today = NOW.astimezone(PARIS).date()
    closed = {"kind": "closed", "scope": "site:Site X", "service": "", "note": "Travaux",
              "csrf_token": token(app)}  # fmt: skip
    refused = app.client.post(
        "/admin/schedules/exceptions", data=closed | {"day": (today - timedelta(1)).isoformat()}
    )
    assert "Cette date est passée" in refused.text
    assert 'name="note" value="Travaux"' in refused.text
    day = today + timedelta(days=1)
    done = app.client.post("/admin/schedules/exceptions", data=closed | {"day": day.isoformat()})
    assert f"Fermeture ajoutée : tous les services, le {day_fr(day)} " in done.text
    assert "toute la journée, site Site X." in done.text
    with app.sessions() as session:
        assert len(session.scalars(select(ScheduleException)).all()) == 1


def test_the_preview_never_gives_the_current_minute_as_an_opening(
    web: tuple[WebApp, dict[str, int]],
) -> None:
    """Issue 17: the preview said "MSA : aujourd'hui 10 h 14" while MSA was open. An opening
    under way is said as such, and the closed screen is shown as it will be at closing."""
    app, _ids = web
    monday_10_14 = NOW + timedelta(minutes=14)
    cast(FastAPI, app.client.app).dependency_overrides[request_now] = lambda: monday_10_14
    with app.sessions.begin() as session:
        session.add(ScheduleRule(service="msa", mode="slot", site="Site X", weekday=0,
                                 start_time=time(9), end_time=time(12)))  # fmt: skip
    page = app.client.get("/admin/schedules", params={"guichet": "x1"}).text
    preview = page.split('id="preview"')[1].replace("&#39;", "'")
    assert "10 h 14" not in preview
    assert "Ouvert en ce moment : MSA jusqu'à 12 h." in preview
    assert "Quand il fermera (aujourd'hui 12 h), son écran affichera :" in preview
    next_monday = NOW.astimezone(PARIS).date() + timedelta(days=7)
    lines = preview.split('id="preview-lines"')[1].split("</ul>")[0]
    assert f"MSA : {day_fr(next_monday)} 9 h" in lines
    assert "Caf : sur rendez-vous" in lines

    # At 12 h it is closed, and the screen's lines are those of now.
    noon = NOW + timedelta(hours=2)
    cast(FastAPI, app.client.app).dependency_overrides[request_now] = lambda: noon
    page = app.client.get("/admin/schedules", params={"guichet": "x1"}).text
    preview = page.split('id="preview"')[1].replace("&#39;", "'")
    assert "Fermé en ce moment." in preview
    assert "Son écran affiche :" in preview
