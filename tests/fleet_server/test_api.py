"""The JSON API (/api/v1) and Prometheus /metrics with a bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from fleet_server.models import Alert
from tests.support.webapp import SITES, WebApp, running_app, seed_devices


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
