"""Call setup pages on the real app: services, a counter's service and call token (admin
only, CSRF-protected, token shown once and stored as SHA-256), the agent console's access."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from fleet_server.models import Device
from fleet_server.security import auth
from tests.support.webapp import PASSWORD, WebApp, running_app, seed_devices

DEVICE = "guichet-00000"
TOKEN_RE = re.compile(r'id="call-token">([^<]+)<')
POSTS = [f"/devices/{DEVICE}/call-token", f"/devices/{DEVICE}/service", "/admin/services"]


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        app.add_user("audrey", "auditor")
        with app.sessions.begin() as session:
            auth.upsert_user(session, "alice", PASSWORD, role="agent", service="caf")
        seed_devices(app.sessions, 1)
        yield app


@pytest.mark.parametrize("path", POSTS)
def test_setup_posts_need_an_admin(web: WebApp, path: str) -> None:
    anonymous = web.client.post(path, data={}, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    web.login("audrey")
    assert web.client.post(path, data={"csrf_token": web.csrf("/")}).status_code == 403


def test_call_token_is_shown_once_and_stored_hashed(web: WebApp) -> None:
    web.login()
    page = web.client.get(f"/devices/{DEVICE}")
    assert "Créer un jeton d'appel" in page.text
    refused = web.client.post(f"/devices/{DEVICE}/call-token", data={})
    assert refused.status_code == 403  # no CSRF token
    response = web.client.post(f"/devices/{DEVICE}/call-token", data={"csrf_token": web.csrf("/")})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    match = TOKEN_RE.search(response.text)
    assert match
    token = match.group(1)
    with web.sessions() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        assert device.call_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    again = web.client.get(f"/devices/{DEVICE}").text
    assert token not in again
    assert "Remplacer le jeton d'appel" in again


def test_admin_sets_the_counter_service_and_creates_services(web: WebApp) -> None:
    web.login()
    csrf = web.csrf("/")
    response = web.client.post(
        f"/devices/{DEVICE}/service",
        data={"service": "msa", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with web.sessions() as session:
        assert session.get(Device, DEVICE).service == "msa"  # type: ignore[union-attr]
    unknown = web.client.post(
        f"/devices/{DEVICE}/service", data={"service": "nope", "csrf_token": csrf}
    )
    assert [r.status_code for r in unknown.history] == [303]  # back to the counter's page
    assert "Service inconnu « nope »." in unknown.text
    nowhere = web.client.post("/devices/nope/service", data={"service": "", "csrf_token": csrf})
    assert nowhere.status_code == 404

    services = web.client.get("/admin/services").text
    for label in ("Caf", "MSA", "France Travail", "Carsat"):
        assert label in services
    created = web.client.post(
        "/admin/services", data={"code": "cpam", "label": "Assurance Maladie", "csrf_token": csrf}
    )
    assert created.status_code == 200
    assert "Assurance Maladie" in created.text
    assert "Service « Assurance Maladie » créé." in created.text
    duplicate = web.client.post(
        "/admin/services", data={"code": "cpam", "label": "Encore", "csrf_token": csrf}
    )
    assert duplicate.history[0].status_code == 303  # post/redirect/get, the form kept
    assert "existe déjà" in duplicate.text
    assert 'value="Encore"' in duplicate.text


def test_agents_land_on_their_console_and_not_on_the_dashboard(web: WebApp) -> None:
    response = web.login("alice")
    assert response.headers["location"] == "/agent"
    console = web.client.get("/agent")
    assert console.status_code == 200
    assert "Console Caf" in console.text
    assert 'data-ws-path="/ws/agent"' in console.text
    assert '<script src="/static/agent.js"' in console.text
    assert web.client.get("/").status_code == 403
    assert web.client.get("/admin/services").status_code == 403


def test_admin_watches_a_service_and_auditors_have_no_console(web: WebApp) -> None:
    web.login()
    picker = web.client.get("/agent").text
    assert "Choisissez le service" in picker
    watching = web.client.get("/agent", params={"service": "caf"}).text
    assert 'data-ws-path="/ws/agent?service=caf"' in watching
    assert "Observation seule" in watching
    web.client.cookies.clear()
    web.login("audrey")
    assert web.client.get("/agent").status_code == 403


def test_console_scripts_are_served(web: WebApp) -> None:
    for name in ("agent.js", "agent_call.js", "agent.css"):
        assert web.client.get(f"/static/{name}").status_code == 200


def test_cli_counter_token_and_services(db_url: str) -> None:
    import secrets

    from fleet_server.calls.admin import device_for_call_token
    from fleet_server.db import make_engine, make_session_factory
    from tests.fleet_server.test_auth_cli import guichet

    env = {"GUICHET_DATABASE_URL": db_url, "GUICHET_SECRET_KEY": secrets.token_urlsafe(24)}
    created = guichet("create-service", "cpam", "Assurance Maladie", env=env)
    assert created.returncode == 0, created.stderr
    assert guichet("create-service", "cpam", "Encore", env=env).returncode == 2
    no_service = guichet(
        "create-user", "bob", "--role", "agent", "--password-stdin", env=env, stdin=PASSWORD + "\n"
    )
    assert no_service.returncode == 2
    agent = guichet(
        "create-user",
        "bob",
        "--role",
        "agent",
        "--service",
        "caf",
        "--password-stdin",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert agent.returncode == 0, agent.stderr
    run = guichet("counter-token", "nouveau-guichet", env=env)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            device = device_for_call_token(session, token)
            assert device is not None
            assert device.id == "nouveau-guichet"
    finally:
        engine.dispose()
