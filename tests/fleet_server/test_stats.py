"""Uptake statistics on a seeded month (SQLite and PostgreSQL): ``monthly_stats`` figures,
the Paris month boundaries, the filters, the page's table and charts, the CSV export, and
who may see which site."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from fleet_server.models import CallRecord, Device, SurveyRecord
from fleet_server.security import auth
from fleet_server.stats import uptake as stats
from fleet_server.stats.uptake import StatsRow
from fleet_server.web.statistics import CSV_HEADER
from tests.support import stats_month as sm
from tests.support.webapp import PASSWORD, WebApp, running_app

ROW_RE = re.compile(r'<tr data-site="([^"]*)" data-service="([^"]*)">(.*?)</tr>', re.S)
TOTAL_RE = re.compile(r'<tr class="total" data-total="1">(.*?)</tr>', re.S)
CELL_RE = re.compile(r'data-col="(\w+)">([^<]*)<')
TITLE_RE = re.compile(r"<title>([^<]+)</title>")
LABELS = {"caf": "Caf", "msa": "MSA", "france-travail": "France Travail", "carsat": "Carsat"}


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        with app.sessions.begin() as session:
            auth.upsert_user(session, "admin", PASSWORD, role="admin")
            auth.upsert_user(session, "audrey", PASSWORD, role="auditor")
            auth.upsert_user(session, "rita", PASSWORD, role="reception", site=sm.SITES[1])
        yield app


@pytest.fixture
def seeded(web: WebApp) -> sm.Plan:
    plan = sm.plan()
    sm.seed(web.sessions, plan)
    return plan


def monthly(web: WebApp, month: date = sm.MONTH, **filters: str) -> list[StatsRow]:
    with web.sessions() as session:
        return stats.monthly_stats(session, month, **filters)


def assert_row(row: StatsRow, exp: sm.Expected) -> None:
    assert (row.requested, row.answered, row.missed, row.unanswered_other) == (
        exp.requested,
        exp.answered,
        exp.missed,
        exp.other,
    )
    assert row.wait_avg_s == _r3(exp.wait_avg_s)
    assert row.wait_median_s == _r3(exp.wait_median_s)
    assert row.length_avg_s == _r3(exp.length_avg_s)
    assert row.surveys == exp.surveys
    assert row.satisfaction_avg == _r(exp.satisfaction_avg, 6)
    assert (row.dealt_yes, row.dealt_partly, row.dealt_answers) == (
        exp.dealt_yes,
        exp.dealt_partly,
        exp.dealt_answers,
    )
    assert (row.travelled, row.km_avoided) == (exp.travelled, exp.km_avoided)


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _r3(value: float | None) -> float | None:
    return _r(value, 3)


def test_every_site_and_service_and_the_total_match_the_seeded_month(
    web: WebApp, seeded: sm.Plan
) -> None:
    rows = monthly(web)
    groups = [(r.site, r.service) for r in rows[:-1]]
    assert groups == sorted((site, service) for site in sm.SITES for service in sm.SERVICES)
    for row in rows[:-1]:
        assert_row(row, sm.expected(seeded, row.site, row.service))
    total = rows[-1]
    assert total.is_total
    assert_row(total, sm.expected(seeded))
    # Pinned, so the plan and the code cannot drift together.
    assert (total.requested, total.answered, total.missed, total.unanswered_other) == (
        52,
        36,
        12,
        4,
    )
    assert (total.wait_median_s, total.wait_avg_s, total.length_avg_s) == (82.5, 85.833, 371.667)
    assert total.satisfaction_counts == (7, 6, 6, 9, 8)
    assert (total.dealt_yes, total.dealt_partly, total.dealt_no) == (16, 12, 8)
    assert (total.travelled, total.km_avoided) == (28, 1260)
    # Version 2's "more than 30 km" is 60 km, not version 1's 45: read from each answer's own.
    v2 = next(r for r in rows if (r.site, r.service) == (sm.SITES[1], sm.SERVICES[1]))
    assert (
        v2.km_avoided == sm.expected(seeded, sm.SITES[1], sm.SERVICES[1]).km_avoided == 180
    )  # 2 × (5 + 25 + 60), not 2 × (5 + 20 + 45)


@pytest.mark.parametrize(
    "filters",
    [{"site": sm.SITES[2]}, {"service": "msa"}, {"site": sm.SITES[0], "service": "carsat"}],
    ids=["site", "service", "both"],
)
def test_filters_keep_only_the_chosen_site_and_service(
    web: WebApp, seeded: sm.Plan, filters: dict[str, str]
) -> None:
    rows = monthly(web, **filters)
    for row in rows[:-1]:
        assert filters.get("site", row.site) == row.site
        assert filters.get("service", row.service) == row.service
        assert_row(row, sm.expected(seeded, row.site, row.service))
    expected_groups = 4 if "service" not in filters else (3 if "site" not in filters else 1)
    assert len(rows) - 1 == expected_groups
    assert_row(rows[-1], sm.expected(seeded, filters.get("site"), filters.get("service")))


def test_months_are_paris_calendar_months(web: WebApp) -> None:
    edges = {
        datetime(2025, 2, 28, 23, 30, tzinfo=UTC): "caf",  # 1 March 00:30 in Paris (CET)
        datetime(2025, 3, 31, 21, 30, tzinfo=UTC): "msa",  # 31 March 23:30 in Paris (CEST)
        datetime(2025, 3, 31, 22, 30, tzinfo=UTC): "carsat",  # 1 April 00:30 in Paris
    }
    with web.sessions.begin() as session:
        session.add(Device(id="edge", site="Bord", name="Bord"))
        session.flush()
        for at, service in edges.items():
            session.execute(
                insert(CallRecord).values(
                    id=uuid.uuid4(),
                    device_id="edge",
                    site="Bord",
                    service=service,
                    requested_at=at,
                    answered_at=None,
                    ended_at=at,
                    end_reason="missed",
                )
            )
            session.execute(
                insert(SurveyRecord).values(
                    id=uuid.uuid4(),
                    device_id="edge",
                    at=at,
                    received_at=at,
                    questionnaire_version=1,
                    answers={"satisfaction": "5"},
                    service=service,
                    site="Bord",
                )
            )
    march = monthly(web, date(2025, 3, 15))
    assert [(r.service, r.requested, r.surveys) for r in march[:-1]] == [
        ("caf", 1, 1),
        ("msa", 1, 1),
    ]
    april = monthly(web, date(2025, 4, 1))
    assert [(r.service, r.missed, r.surveys) for r in april[:-1]] == [("carsat", 1, 1)]
    february = monthly(web, date(2025, 2, 1))
    assert february[-1].requested == 0
    assert february[-1].wait_avg_s is None
    with web.sessions() as session:
        days = stats.daily_calls(session, date(2025, 3, 1))
        april_days = stats.daily_calls(session, date(2025, 4, 1))
    assert len(days) == 31
    assert (days[0].day, days[0].requested) == (date(2025, 3, 1), 1)
    assert (days[30].day, days[30].requested) == (date(2025, 3, 31), 1)
    assert sum(d.requested for d in days) == 2
    assert (april_days[0].requested, len(april_days)) == (1, 30)


def page_rows(html: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = {
        (site, service): dict(CELL_RE.findall(body)) for site, service, body in ROW_RE.findall(html)
    }
    total = TOTAL_RE.search(html)
    assert total, "no total row"
    rows[("", "")] = dict(CELL_RE.findall(total.group(1)))
    return rows


def test_page_shows_the_month_table_totals_and_charts(web: WebApp, seeded: sm.Plan) -> None:
    web.login()
    response = web.client.get("/statistiques", params={"mois": "2025-03"})
    assert response.status_code == 200
    html = response.text
    assert "Statistiques — mars 2025" in html
    rows = page_rows(html)
    assert len(rows) == 13
    for (site, service), cells in rows.items():
        exp = sm.expected(seeded, site or None, service or None)
        assert cells == sm.shown(exp), (site, service)
    total = rows[("", "")]
    assert (total["requested"], total["wait_avg"], total["wait_median"]) == (
        "52",
        "1 min 26 s",
        "1 min 22 s",
    )
    assert (total["satisfaction"], total["dealt"], total["km"]) == (
        "3,14 / 5",
        "44,4 %",
        "1\u202f260 km",
    )
    titles = set(TITLE_RE.findall(html))
    per_service = {s: sm.expected(seeded, service=s) for s in sm.SERVICES}
    for code, exp in per_service.items():
        assert f"{LABELS[code]} — répondus : {exp.answered}" in titles
        if exp.missed:
            assert f"{LABELS[code]} — manqués : {exp.missed}" in titles
    assert "Très content — réponses : 8" in titles
    assert "31 — répondus : 1" in titles or "31 — sans réponse : 1" in titles
    # Nothing below a site: no counter id, no agent.
    assert "guichet-0" not in html


def test_page_filters_and_an_empty_month(web: WebApp, seeded: sm.Plan) -> None:
    web.login("audrey")
    filtered = web.client.get(
        "/statistiques", params={"mois": "2025-03", "site": sm.SITES[0], "service": "caf"}
    ).text
    rows = page_rows(filtered)
    assert set(rows) == {(sm.SITES[0], "caf"), ("", "")}
    assert rows[("", "")] == sm.shown(sm.expected(seeded, sm.SITES[0], "caf"))
    empty = web.client.get("/statistiques", params={"mois": "2024-03"}).text
    assert "Aucun appel ni questionnaire ce mois-ci." in empty
    assert page_rows(empty)[("", "")]["requested"] == "0"
    assert page_rows(empty)[("", "")]["wait_avg"] == "—"
    assert web.client.get("/statistiques", params={"mois": "2025-13"}).status_code == 422


def parse_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark"
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";")
    assert tuple(reader.fieldnames or ()) == CSV_HEADER
    return list(reader)


def fr(value: str) -> float | None:
    return None if value == "" else float(value.replace(",", "."))


def test_csv_export_matches_the_seeded_month(web: WebApp, seeded: sm.Plan) -> None:
    web.login()
    response = web.client.get("/statistiques.csv", params={"mois": "2025-03"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="statistiques-2025-03.csv"' in response.headers["content-disposition"]
    records = parse_csv(response.content)
    assert len(records) == 13
    by_label = {v: k for k, v in LABELS.items()}
    for rec in records:
        assert rec["Mois"] == "2025-03"
        total = rec["Site"] == "Total"
        site = None if total else rec["Site"]
        service = None if total else by_label[rec["Service"]]
        exp = sm.expected(seeded, site, service)
        assert int(rec["Appels demandés"]) == exp.requested
        assert int(rec["Appels répondus"]) == exp.answered
        assert int(rec["Appels manqués"]) == exp.missed
        assert int(rec["Autres sans réponse"]) == exp.other
        assert fr(rec["Attente moyenne (s)"]) == _r(exp.wait_avg_s, 1)
        assert fr(rec["Attente médiane (s)"]) == _r(exp.wait_median_s, 1)
        assert fr(rec["Durée moyenne (s)"]) == _r(exp.length_avg_s, 1)
        assert int(rec["Questionnaires"]) == exp.surveys
        assert fr(rec["Satisfaction moyenne (1 à 5)"]) == _r(exp.satisfaction_avg, 2)
        assert int(rec["Traitée : oui"]) == exp.dealt_yes
        assert int(rec["Traitée : en partie"]) == exp.dealt_partly
        assert fr(rec["Part traitée (%)"]) == round(100 * exp.dealt_yes / exp.dealt_answers, 1)
        assert int(rec["Déplacements évités"]) == exp.travelled
        assert int(rec["Km évités (aller-retour)"]) == exp.km_avoided
    total = records[-1]
    assert total["Site"] == "Total"
    assert (total["Attente moyenne (s)"], total["Durée moyenne (s)"]) == ("85,8", "371,7")
    assert (total["Satisfaction moyenne (1 à 5)"], total["Km évités (aller-retour)"]) == (
        "3,14",
        "1260",
    )
    filtered = parse_csv(
        web.client.get("/statistiques.csv", params={"mois": "2025-03", "service": "msa"}).content
    )
    assert [r["Service"] for r in filtered] == ["MSA", "MSA", "MSA", ""]


def test_reception_staff_see_their_own_site_only(web: WebApp, seeded: sm.Plan) -> None:
    web.login("rita")
    html = web.client.get("/statistiques", params={"mois": "2025-03"}).text
    rows = page_rows(html)
    assert {site for site, _ in rows} == {sm.SITES[1], ""}
    assert rows[("", "")] == sm.shown(sm.expected(seeded, sm.SITES[1]))
    assert sm.SITES[0] not in html  # not even in a site filter
    other = {"mois": "2025-03", "site": sm.SITES[0]}
    assert web.client.get("/statistiques", params=other).status_code == 403
    assert web.client.get("/statistiques.csv", params=other).status_code == 403
    records = parse_csv(web.client.get("/statistiques.csv", params={"mois": "2025-03"}).content)
    assert {r["Site"] for r in records} == {sm.SITES[1], "Total"}
    assert int(records[-1]["Appels demandés"]) == sm.expected(seeded, sm.SITES[1]).requested
