"""The administrators' timetable page: service settings, weekly rules, permanences and
exceptions per scope, the preview of a counter's openings and the public holidays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, Permanence, ScheduleException, ScheduleRule, Service
from tests.fleet_server.appointment_support import booking_day, seed
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
    assert refused.status_code == 400
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
