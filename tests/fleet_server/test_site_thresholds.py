"""Offline thresholds per site: the health check alerts a counter after its site's own
delay; the page and ``/api/v1/alert-thresholds`` are for administrators only, refuse
forged sites and record every change in the audit log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.metrics import Metrics
from fleet_server.models import Alert, AuditEntry, Device, SiteThreshold
from fleet_server.mqtt.health import run_checks
from fleet_server.settings import Settings
from guichet import contract
from tests.fleet_server.storage_support import apply, make_settings, received, status
from tests.support.webapp import WebApp

PREFIX = "/api/v1/alert-thresholds"
BUSY, RURAL, OTHER = "Mairie de Châlus", "Monts / Vallée", "Site C"


def open_alerts(sessions: sessionmaker[Session]) -> set[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))
        return {(a.device_id, a.kind) for a in rows}


def test_a_site_with_a_shorter_delay_alerts_first(sessions: sessionmaker[Session]) -> None:
    settings: Settings = make_settings(alert_offline_after_min=30)
    t0 = contract.utcnow() - timedelta(hours=3)
    will = status("offline", reason="last-will")
    for device_id in ("busy-01", "rural-01", "other-01"):
        apply(sessions, settings, received(device_id, will, received_at=t0))
    with sessions.begin() as session:
        for device_id, site in (("busy-01", BUSY), ("rural-01", RURAL), ("other-01", OTHER)):
            session.execute(update(Device).where(Device.id == device_id).values(site=site))
        session.add(SiteThreshold(site=BUSY, offline_after_min=5, updated_at=t0))
        session.add(SiteThreshold(site=RURAL, offline_after_min=120, updated_at=t0))

    run_checks(sessions, settings, Metrics(), t0 + timedelta(minutes=6))
    assert open_alerts(sessions) == {("busy-01", "offline")}  # the others, same silence: no
    run_checks(sessions, settings, Metrics(), t0 + timedelta(minutes=31))
    assert open_alerts(sessions) == {("busy-01", "offline"), ("other-01", "offline")}
    run_checks(sessions, settings, Metrics(), t0 + timedelta(minutes=119))
    assert ("rural-01", "offline") not in open_alerts(sessions)
    run_checks(sessions, settings, Metrics(), t0 + timedelta(minutes=121))
    assert ("rural-01", "offline") in open_alerts(sessions)
    with sessions() as session:
        raised = dict(session.execute(select(Alert.device_id, Alert.raised_at)).all())
    assert raised["busy-01"] == t0 + timedelta(minutes=6)
    assert raised["other-01"] == t0 + timedelta(minutes=31)


def _counters(web: WebApp) -> None:
    with web.sessions.begin() as session:
        session.add(Device(id="dev-busy", site=BUSY, name="A", state="online"))
        session.add(Device(id="dev-rural", site=RURAL, name="B", state="online"))
        # A counter that *says* it is elsewhere: its claim is not a site.
        session.add(Device(id="dev-c", site=RURAL, reported_site="Site inventé"))


def _actions(web: WebApp) -> list[tuple[str, str, dict[str, object]]]:
    with web.sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("site.threshold%"))
        ).all()
        return [(e.action, e.target, dict(e.detail)) for e in rows]


def test_api_sets_lists_and_removes_audited(web: WebApp) -> None:
    _counters(web)
    web.client.cookies.clear()  # by token only
    web.add_user("auditor", "auditor")
    headers = {"Authorization": f"Bearer {web.token()}"}
    denied = {"Authorization": f"Bearer {web.token('auditor')}"}
    path = f"{PREFIX}/{RURAL}"
    for method, url in (("GET", PREFIX), ("PUT", path), ("DELETE", path)):
        body = {"offline_after_min": 60} if method == "PUT" else None
        response = web.client.request(method, url, json=body, headers=denied)
        assert response.status_code == 403, (method, url)
        response = web.client.request(method, url, json=body, headers={"Authorization": "x"})
        assert response.status_code == 401, (method, url)

    done = web.client.put(path, json={"offline_after_min": 60}, headers=headers)
    assert done.status_code == 200
    assert done.json()["site"] == RURAL
    again = web.client.put(path, json={"offline_after_min": 90}, headers=headers)
    assert again.json()["offline_after_min"] == 90
    listed = web.client.get(PREFIX, headers=headers).json()
    assert listed["default_offline_after_min"] == 5.0
    assert [(s["site"], s["offline_after_min"]) for s in listed["sites"]] == [(RURAL, 90)]
    for forged in ("Site inventé", "Nulle part"):
        refused = web.client.put(
            f"{PREFIX}/{forged}", json={"offline_after_min": 10}, headers=headers
        )
        assert refused.status_code == 422
        assert "Site inconnu" in refused.json()["detail"]
    for minutes in (0, 1441, "dix"):
        bad = web.client.put(path, json={"offline_after_min": minutes}, headers=headers)
        assert bad.status_code == 422
    extra = web.client.put(path, json={"offline_after_min": 9, "x": 1}, headers=headers)
    assert extra.status_code == 422
    assert web.client.delete(path, headers=headers).status_code == 204
    assert web.client.delete(path, headers=headers).status_code == 404
    assert _actions(web) == [
        (
            "site.threshold_set",
            RURAL,
            {"offline_after_min": 60, "previous_offline_after_min": None},
        ),
        ("site.threshold_set", RURAL, {"offline_after_min": 90, "previous_offline_after_min": 60}),
        ("site.threshold_remove", RURAL, {"previous_offline_after_min": 90}),
    ]


def test_every_status_code_is_declared(web: WebApp) -> None:
    schema = web.client.get("/api/v1/openapi.json").json()
    expected = {
        ("get", ""): {"200", "401", "403", "422"},  # 422: a NUL character (api/guards.py)
        ("put", "/{site}"): {"200", "400", "401", "403", "404", "422"},  # 400: a body not JSON
        ("delete", "/{site}"): {"204", "401", "403", "404", "422"},
    }
    for (method, path), codes in expected.items():
        declared = set(schema["paths"][PREFIX + path][method]["responses"])
        assert declared == codes, (method, path, declared)


def test_page_form_for_administrators_only(web: WebApp) -> None:
    _counters(web)
    token = web.csrf("/admin/notifications")
    page = web.client.get("/admin/notifications").text
    assert "Délai avant l'alerte « hors ligne », par site" in page
    form = {"site": BUSY, "minutes": "10", "csrf_token": token}
    done = web.client.post("/admin/notifications/thresholds", data=form, follow_redirects=False)
    assert done.status_code == 303
    page = web.client.get("/admin/notifications").text
    assert "Délai du site « Mairie de Châlus » : 10 min." in page
    forged = form | {"site": "Site inventé"}
    web.client.post("/admin/notifications/thresholds", data=forged, follow_redirects=False)
    assert "Site inconnu « Site inventé »" in web.client.get("/admin/notifications").text
    web.client.post(
        "/admin/notifications/thresholds", data=form | {"minutes": "dix"}, follow_redirects=False
    )
    assert "nombre entier de minutes" in web.client.get("/admin/notifications").text
    without_csrf = form | {"minutes": "7", "csrf_token": ""}
    assert web.client.post("/admin/notifications/thresholds", data=without_csrf).status_code == 403
    removed = web.client.post(
        "/admin/notifications/thresholds/delete",
        data={"site": BUSY, "csrf_token": token},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    with web.sessions() as session:
        assert session.scalars(select(SiteThreshold)).all() == []
    assert [(a, t) for a, t, _ in _actions(web)] == [
        ("site.threshold_set", BUSY),
        ("site.threshold_remove", BUSY),
    ]
    web.client.cookies.clear()
    web.add_user("auditor", "auditor")
    assert web.login("auditor").status_code == 303
    token = web.csrf("/")
    refused = web.client.post("/admin/notifications/thresholds", data=form | {"csrf_token": token})
    assert refused.status_code == 403
    with web.sessions() as session:
        assert session.scalars(select(SiteThreshold)).all() == []
