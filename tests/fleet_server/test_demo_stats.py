"""The demo's seeded statistics (issue 17: the page was empty on a fresh demo): six weeks of
plausible calls and answers before today, on the demo's timetable, marked as demo data, seeded
once, and shown by ``/statistiques`` — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fleet_server.models import CallRecord, Device, SurveyRecord
from fleet_server.security import auth
from fleet_server.stats import uptake as stats
from guichet.schedule import PARIS
from guichet_cli.demo_scheme import COUNTERS, agent_login
from guichet_cli.demo_stats import SEED_DAYS, is_demo_id, openings, seed_statistics
from tests.support.webapp import PASSWORD, WebApp, running_app

TODAY = date(2026, 3, 20)  # a Friday; Paris goes to summer time on 29 March
ROW_RE = re.compile(r'<tr data-site="([^"]*)" data-service="([^"]*)">')


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    """The web app on the demo's counters and agents, with the statistics seeded."""
    with running_app(db_url) as app:
        with app.sessions.begin() as session:
            auth.upsert_user(session, "admin", PASSWORD, role="admin")
            for counter in COUNTERS:
                session.add(Device(id=counter.device_id, site=counter.site, name=counter.name))
                auth.upsert_user(
                    session, agent_login(counter.service), PASSWORD, role="agent",
                    service=counter.service,
                )  # fmt: skip
        with app.sessions.begin() as session:
            assert seed_statistics(session, TODAY) > 0
        yield app


def test_the_seeded_weeks_are_plausible_demo_data_before_today(web: WebApp) -> None:
    with web.sessions() as session:
        calls = session.scalars(select(CallRecord)).all()
        answers = session.scalars(select(SurveyRecord)).all()
    assert 100 < len(calls) < 600, len(calls)  # a few calls a week per counter
    assert all(is_demo_id(row.id) for row in [*calls, *answers])
    midnight = datetime.combine(TODAY, datetime.min.time(), tzinfo=PARIS)
    earliest = midnight - timedelta(days=SEED_DAYS)
    sites = {c.device_id: c for c in COUNTERS}
    for call in calls:
        assert earliest <= call.requested_at < midnight
        local = call.requested_at.astimezone(PARIS)
        opened = openings(sites[call.device_id], local.date())
        assert any(o.service == call.service and o.start <= local.time() < o.end for o in opened), (
            call.requested_at
        )
        assert call.site == sites[call.device_id].site
        if call.answered_at is not None:
            assert call.agent_user_id is not None  # the service's agent answered it
    assert {call.service for call in calls} == {"caf", "msa", "france-travail", "carsat"}
    assert all(answer.at < midnight + timedelta(hours=1) for answer in answers)


def test_seeding_again_adds_only_new_days(web: WebApp) -> None:
    with web.sessions.begin() as session:
        before = session.scalar(select(func.count()).select_from(CallRecord))
        assert seed_statistics(session, TODAY) == 0
        added = seed_statistics(session, TODAY + timedelta(days=7))
        after = session.scalar(select(func.count()).select_from(CallRecord))
    assert 0 < added == after - before


def test_the_statistics_page_shows_what_it_is_for(web: WebApp) -> None:
    for month in (date(2026, 2, 1), date(2026, 3, 1)):
        with web.sessions() as session:
            total = stats.monthly_stats(session, month)[-1]
        assert total.is_total
        assert total.requested > 0
        assert 0.7 < total.answered / total.requested < 0.97
        assert total.missed > 0
        assert total.surveys > 0.5 * total.answered
        assert total.satisfaction_avg is not None
        assert 3.5 < total.satisfaction_avg < 5
        assert total.dealt_share is not None
        assert total.dealt_share > 0.5
        assert total.km_avoided > 0
        assert total.wait_median_s is not None
    web.login()
    page = web.client.get("/statistiques", params={"mois": "2026-03"})
    assert page.status_code == 200
    assert "Aucun appel ni questionnaire ce mois-ci." not in page.text
    assert len(ROW_RE.findall(page.text)) >= 9  # sites × services on the timetable
