"""The JSON API (/api/v1) and Prometheus /metrics with a bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from fleet_server.models import Alert
from fleet_server.scheme import appointments
from fleet_server.security import audit
from guichet.contract import utcnow
from tests.fleet_server import appointment_support
from tests.support import stats_month
from tests.support.webapp import PASSWORD, SITES, WebApp, running_app, seed_devices


@pytest.fixture
def api(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("robot", "auditor")
        app.client.headers["Authorization"] = f"Bearer {app.token('robot')}"
        yield app


def test_device_list_walks_every_page_with_cursors(api: WebApp) -> None:
    fleet = seed_devices(api.sessions, 1000)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 200, "state": "online"}
    while True:
        body = api.client.get("/api/v1/devices", params=params).json()
        assert body["total"] == sum(d["state"] == "online" for d in fleet)
        seen.extend(item["id"] for item in body["items"])
        assert all(item["state"] == "online" for item in body["items"])
        if body["next_cursor"] is None:
            break
        params["after"] = body["next_cursor"]
    online = sorted(
        (d for d in fleet if d["state"] == "online"), key=lambda d: (d["site"], d["id"])
    )
    assert seen == [d["id"] for d in online]

    back = api.client.get("/api/v1/devices", params={"before": params["after"], "limit": 200})
    assert back.status_code == 200
    assert len(back.json()["items"]) == 200


def test_device_list_filters(api: WebApp) -> None:
    seed_devices(api.sessions, 100)
    body = api.client.get("/api/v1/devices", params={"site": SITES[0], "q": "0004"}).json()
    assert [i["id"] for i in body["items"]] == [f"guichet-000{n:02d}" for n in (4, 40, 44, 48)]
    flagged = api.client.get("/api/v1/devices", params={"alerts_only": True}).json()
    assert {i["id"] for i in flagged["items"]} == {f"guichet-{i:05d}" for i in range(0, 100, 11)}
    assert api.client.get("/api/v1/devices", params={"state": "bogus"}).status_code == 422
    assert api.client.get("/api/v1/devices", params={"after": "%%%"}).status_code == 400
    assert api.client.get("/api/v1/devices", params={"limit": 5000}).status_code == 422


def test_device_detail_and_alerts(api: WebApp) -> None:
    seed_devices(api.sessions, 3)
    now = datetime.now(UTC)
    with api.sessions.begin() as session:
        session.add(Alert(device_id="guichet-00001", kind="disk", detail="95 %", raised_at=now))
    detail = api.client.get("/api/v1/devices/guichet-00001")
    assert detail.status_code == 200
    body = detail.json()
    assert body["site"] == SITES[1]
    assert body["state"] == "online"
    assert [a["kind"] for a in body["alerts"]["open"]] == ["disk"]
    assert api.client.get("/api/v1/devices/nope").status_code == 404

    alerts = api.client.get("/api/v1/alerts").json()
    assert alerts["open"][0]["device_id"] == "guichet-00001"
    assert alerts["open"][0]["site"] == SITES[1]
    assert alerts["cleared"] == []


def test_openapi_document_and_reference_page(api: WebApp) -> None:
    schema = api.client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/devices", "/api/v1/devices/{device_id}", "/api/v1/alerts"} <= set(
        schema["paths"]
    )
    assert "/" not in schema["paths"]  # the HTML pages are not part of the API
    docs = api.client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "/api/v1/devices/{device_id}" in docs.text
    assert "cdn" not in docs.text.lower()


def test_metrics_need_a_token_and_count_counters(api: WebApp) -> None:
    seed_devices(api.sessions, 14)  # the state cycle has 4 online of every 7
    text = api.client.get("/metrics").text
    assert 'guichet_devices{state="online"} 8.0' in text
    assert "guichet_messages_ingested" in text
    assert "guichet_open_alerts 0.0" in text
    del api.client.headers["Authorization"]
    assert api.client.get("/metrics").status_code == 401


def test_call_log_statistics_timetables_appointments_and_audit(api: WebApp) -> None:
    """Everything the dashboard shows is readable with a token, by the pages' own queries."""
    stats_month.seed(api.sessions, stats_month.plan())
    appointment_support.seed(api.sessions, PASSWORD)
    day = appointment_support.booking_day()
    with api.sessions.begin() as session:
        appointments.book(
            session, device_id="x1", service="caf", start=appointment_support.slot(day, 9),
            agent_id=None, citizen_name="Jeanne", citizen_phone="0555000000",
            created_by="accueil-x", now=utcnow(),
        )  # fmt: skip
        audit.record(session, "admin", "device.revoke", "x1")

    calls = api.client.get("/api/v1/calls", params={"outcome": "missed", "limit": 5}).json()
    assert len(calls["items"]) == 5
    assert all(c["end_reason"] == "missed" for c in calls["items"])
    more = api.client.get("/api/v1/calls", params={"after": calls["next_cursor"]}).json()
    assert {c["id"] for c in more["items"]}.isdisjoint(c["id"] for c in calls["items"])
    assert api.client.get("/api/v1/calls", params={"after": "%%%"}).status_code == 400
    assert api.client.get("/api/v1/calls", params={"outcome": "x"}).status_code == 422

    month = f"{stats_month.MONTH:%Y-%m}"
    figures = api.client.get("/api/v1/statistics", params={"month": month}).json()
    expected = stats_month.expected(stats_month.plan())
    assert figures["total"]["requested"] == expected.requested
    assert figures["total"]["answered"] == expected.answered
    assert sum(d["requested"] for d in figures["days"]) == expected.requested
    assert api.client.get("/api/v1/statistics", params={"month": "2025-13"}).status_code == 422
    assert api.client.get("/api/v1/statistics", params={"month": "0000-01"}).status_code == 422
    last_day = api.client.get("/api/v1/calls", params={"until": "9999-12-31", "limit": 1})
    assert last_day.status_code == 200  # found by schemathesis: its next day overflowed
    assert len(last_day.json()["items"]) == 1

    table = api.client.get("/api/v1/timetables").json()
    assert [(r["service"], r["weekday"], r["start_time"]) for r in table["rules"]] == [
        ("caf", 1, "09:00")
    ]

    booked = api.client.get("/api/v1/appointments", params={"site": "Site X"}).json()
    assert [(a["device_id"], a["service"]) for a in booked] == [("x1", "caf")]
    assert "Jeanne" not in str(booked)  # no citizen data
    assert "0555000000" not in str(booked)
    assert api.client.get("/api/v1/appointments", params={"site": "Site Y"}).json() == []

    log = api.client.get("/api/v1/audit", params={"action": "device.revoke"}).json()
    assert [(e["actor"], e["target"]) for e in log["items"]] == [("admin", "x1")]


def test_the_api_refuses_like_it_says(api: WebApp) -> None:
    """An auditor's token cannot act; an agent's token reads nothing; a forged or missing
    token is 401; a NUL character is an invalid request, not a server error."""
    seed_devices(api.sessions, 2)
    act = {"action": "selftest", "device_ids": ["guichet-00000"]}
    assert api.client.post("/api/v1/actions", json=act).status_code == 403  # auditor
    api.add_user("agent-1", "agent")
    api.client.headers["Authorization"] = f"Bearer {api.token('agent-1')}"
    assert api.client.get("/api/v1/calls").status_code == 403
    api.client.headers["Authorization"] = "Bearer gpa_forged"
    assert api.client.get("/api/v1/audit").status_code == 401
    api.client.headers["Authorization"] = f"Bearer {api.token('robot')}"
    assert api.client.get("/api/v1/devices/a%00b").status_code == 422
    assert api.client.get("/api/v1/calls", params={"site": "a\x00"}).status_code == 422
    assert api.client.post("/api/v1/actions", json=act | {"site": "a\x00"}).status_code == 422
    assert api.client.get("/api/v1/notifications/deliveries").status_code == 403
    multiline = api.client.put("/api/v1/alert-thresholds/a%0Ab", json={"offline_after_min": 10})
    assert multiline.status_code == 404  # no route: {site:path} is one line (declared)
    schema = api.client.get("/api/v1/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            declared = set(operation["responses"])
            if path != "/api/v1/enrol":
                assert {"401", "422"} <= declared, (method, path)
