"""``/api/v1/notifications``: administrators only (by token or session), forged ids and
sites refused, every change audited, every status code declared in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, Device
from tests.support.databases import fresh_database
from tests.support.webapp import WebApp, running_app

PREFIX = "/api/v1/notifications"
SITE_A, SITE_B = "Site A", "Site B"
ROUTES = (
    ("GET", f"{PREFIX}/targets"),
    ("POST", f"{PREFIX}/targets"),
    ("DELETE", f"{PREFIX}/targets/1"),
    ("GET", f"{PREFIX}/deliveries"),
)
EMAIL = {"channel": "email", "address": "alice@a.example", "site": SITE_A}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    with fresh_database("sqlite", tmp_path_factory.mktemp("api")) as url, running_app(url) as app:
        app.add_user("admin", "admin")
        app.add_user("auditor", "auditor")
        with app.sessions.begin() as session:
            session.add(Device(id="dev-a", site=SITE_A, name="A", state="online"))
            session.add(Device(id="dev-b", site=SITE_B, name="B", state="online"))
            # A counter that *says* it is elsewhere: its claim is not a site (finding 3).
            session.add(Device(id="dev-c", site=SITE_B, reported_site="Site inventé"))
        yield app


def bearer(web: WebApp, username: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {web.token(username)}"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_only_administrators(web: WebApp, method: str, path: str) -> None:
    web.client.cookies.clear()
    body: Any = EMAIL if method == "POST" else None
    assert web.client.request(method, path, json=body).status_code == 401
    bad = {"Authorization": "Bearer gpa_" + "x" * 43}
    assert web.client.request(method, path, json=body, headers=bad).status_code == 401
    denied = web.client.request(method, path, json=body, headers=bearer(web, "auditor"))
    assert denied.status_code == 403
    assert denied.json() == {"detail": "Réservé aux administrateurs."}


def test_create_list_delete_with_a_token_and_audit(web: WebApp) -> None:
    headers = bearer(web)
    created = web.client.post(f"{PREFIX}/targets", json=EMAIL, headers=headers)
    assert created.status_code == 201
    target = created.json()
    assert target["secret"] is None
    hook_body = {"channel": "webhook", "address": "https://hooks.example/t/abc-secret-path"}
    hook = web.client.post(f"{PREFIX}/targets", json=hook_body, headers=headers).json()
    assert hook["secret"].startswith("gpw_")
    listed = web.client.get(f"{PREFIX}/targets", headers=headers).json()
    assert {t["id"] for t in listed} >= {target["id"], hook["id"]}
    assert all("secret" not in t for t in listed)  # shown once, at creation
    for t in (target, hook):
        response = web.client.delete(f"{PREFIX}/targets/{t['id']}", headers=headers)
        assert response.status_code == 204
    with web.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("notification.%"))
        ).all()
    assert [e.action for e in entries][-4:] == [
        "notification.target_create",
        "notification.target_create",
        "notification.target_delete",
        "notification.target_delete",
    ]
    logged = " ".join(str(e.detail) + e.target for e in entries)
    assert hook["secret"] not in logged
    assert "abc-secret-path" not in logged  # only the webhook's host is kept


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (EMAIL | {"site": "Site inventé"}, "Site inconnu"),  # only a counter's own claim
        (EMAIL | {"address": "pas-une-adresse"}, "Adresse de courriel invalide"),
        ({"channel": "webhook", "address": "http://192.0.2.7/hook"}, "doit être en https"),
        (EMAIL | {"quiet_start": "22:00"}, "un début et une fin"),
        (EMAIL | {"quiet_start": "25:00", "quiet_end": "07:00"}, "Heure invalide"),
    ],
)
def test_forged_values_are_refused(web: WebApp, body: dict[str, Any], words: str) -> None:
    response = web.client.post(f"{PREFIX}/targets", json=body, headers=bearer(web))
    assert response.status_code == 422
    assert words in response.json()["detail"]


def test_unknown_kind_and_extra_fields_are_refused(web: WebApp) -> None:
    for body in (EMAIL | {"kinds": ["fire"]}, EMAIL | {"secret": "mine"}):
        response = web.client.post(f"{PREFIX}/targets", json=body, headers=bearer(web))
        assert response.status_code == 422


def test_forged_ids_are_refused(web: WebApp) -> None:
    headers = bearer(web)
    assert web.client.delete(f"{PREFIX}/targets/987654", headers=headers).status_code == 404
    assert web.client.delete(f"{PREFIX}/targets/abc", headers=headers).status_code == 422
    log = web.client.get(f"{PREFIX}/deliveries", params={"target_id": 987654}, headers=headers)
    assert log.status_code == 404
    # A target already deleted is gone for good.
    made = web.client.post(f"{PREFIX}/targets", json=EMAIL, headers=headers).json()
    assert web.client.delete(f"{PREFIX}/targets/{made['id']}", headers=headers).status_code == 204
    assert web.client.delete(f"{PREFIX}/targets/{made['id']}", headers=headers).status_code == 404


def test_a_session_needs_its_csrf_token_to_change_anything(web: WebApp) -> None:
    web.client.cookies.clear()
    assert web.login("admin").status_code == 303
    try:
        assert web.client.get(f"{PREFIX}/targets").status_code == 200
        refused = web.client.post(f"{PREFIX}/targets", json=EMAIL)
        assert refused.status_code == 403
        token = web.csrf("/admin/notifications")
        done = web.client.post(f"{PREFIX}/targets", json=EMAIL, headers={"X-CSRF-Token": token})
        assert done.status_code == 201
    finally:
        web.client.cookies.clear()


def test_every_status_code_is_declared(web: WebApp) -> None:
    schema = web.client.get("/api/v1/openapi.json").json()
    expected = {  # 422 everywhere: a NUL character is refused (fleet_server/api/guards.py)
        ("get", "/targets"): {"200", "401", "403", "422"},
        ("post", "/targets"): {"201", "400", "401", "403", "422"},  # 400: not JSON
        ("delete", "/targets/{target_id}"): {"204", "401", "403", "404", "422"},
        ("get", "/deliveries"): {"200", "401", "403", "404", "422"},
    }
    for (method, path), codes in expected.items():
        declared = set(schema["paths"][PREFIX + path][method]["responses"])
        assert declared == codes, (method, path, declared)
