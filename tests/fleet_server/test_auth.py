"""Login, logout, CSRF, throttling, roles and API tokens on the real app and database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fleet_server.models import ApiToken, User
from fleet_server.security import auth
from fleet_server.security.auth import LoginThrottle
from fleet_server.settings import Settings
from tests.support.webapp import PASSWORD, WebApp, running_app

PAGES = ["/", "/alerts", "/devices/guichet-00001", "/fleet/rows", "/agent", "/admin/services"]


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        yield app


@pytest.mark.parametrize("path", PAGES)
def test_unauthenticated_page_redirects_to_login(web: WebApp, path: str) -> None:
    response = web.client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_login_page_is_french_with_a_csrf_field(web: WebApp) -> None:
    page = web.client.get("/login")
    assert page.status_code == 200
    assert 'lang="fr"' in page.text
    assert "Mot de passe" in page.text
    assert 'name="csrf_token"' in page.text


def test_login_then_logout(web: WebApp) -> None:
    response = web.login()
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # the tests turn secure cookies off (plain HTTP)
    assert "Flotte des guichets" in web.client.get("/").text

    logout = web.client.post("/logout", data={"csrf_token": web.csrf("/")}, follow_redirects=False)
    assert logout.status_code == 303
    assert logout.headers["location"] == "/login"
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_login_follows_a_local_next_only(web: WebApp) -> None:
    for target, expected in [("/alerts", "/alerts"), ("//evil.example", "/"), ("https://x", "/")]:
        web.client.cookies.clear()
        data = {"username": "admin", "password": PASSWORD, "csrf_token": web.csrf()}
        response = web.client.post("/login", data=data | {"next": target}, follow_redirects=False)
        assert response.headers["location"] == expected


@pytest.mark.parametrize(
    ("role", "site", "service", "home"),
    [
        ("admin", None, None, "/"),
        ("auditor", None, None, "/"),
        ("reception", "Site A", None, "/reception"),
        ("agent", None, "caf", "/agent"),
    ],
)
def test_each_role_lands_on_its_own_home(
    web: WebApp, role: str, site: str | None, service: str | None, home: str
) -> None:
    """Issue 17: a reception login lands on /reception (an agent's on the console), unless
    the login page was asked for another page; a logged-in user sent to /login goes home."""
    with web.sessions.begin() as session:
        auth.upsert_user(session, "someone", PASSWORD, role=role, site=site, service=service)
    assert web.login("someone").headers["location"] == home
    again = web.client.get("/login", follow_redirects=False)
    assert again.headers["location"] == home
    web.client.cookies.clear()
    data = {"username": "someone", "password": PASSWORD, "csrf_token": web.csrf()}
    asked = web.client.post("/login", data=data | {"next": "/statistiques"}, follow_redirects=False)
    assert asked.headers["location"] == "/statistiques"


def test_the_login_page_speaks_to_every_role(web: WebApp) -> None:
    page = web.client.get("/login").text
    assert "Tableau de bord de la flotte" not in page  # agents and reception log in here too
    assert "aux agents et à l'accueil" in page.replace("&#39;", "'")


def test_wrong_password_is_refused(web: WebApp) -> None:
    response = web.login(password="not the password")
    assert response.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in response.text
    assert web.client.get("/", follow_redirects=False).status_code == 303
    unknown = web.login(username="nobody")
    assert unknown.status_code == 401


def test_login_without_csrf_token_is_rejected(web: WebApp) -> None:
    web.client.get("/login")  # a session exists, but the form omits its token
    data = {"username": "admin", "password": PASSWORD}
    response = web.client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403
    forged = web.client.post("/login", data=data | {"csrf_token": "forged"})
    assert forged.status_code == 403
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_logout_without_csrf_token_is_rejected(web: WebApp) -> None:
    web.login()
    response = web.client.post("/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert web.client.get("/").status_code == 200  # still logged in


def test_repeated_failures_lock_the_username_for_this_ip(web: WebApp) -> None:
    for _ in range(5):
        assert web.login(password="wrong password").status_code == 401
    locked = web.login()  # even the right password waits out the lockout
    assert locked.status_code == 429
    assert "Trop de tentatives" in locked.text
    web.add_user("other", "auditor")
    assert web.login("other").status_code == 303


def test_lockout_expires() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=30, clock=lambda: now[0])
    for _ in range(2):
        throttle.failure("a|ip")
    assert throttle.locked_for("a|ip") == 0
    throttle.failure("a|ip")
    assert throttle.locked_for("a|ip") == 30
    now[0] = 31
    assert throttle.locked_for("a|ip") == 0
    now[0] = 200  # old failures are forgotten: two more do not lock
    throttle.failure("a|ip")
    throttle.failure("a|ip")
    assert throttle.locked_for("a|ip") == 0


def test_dashboard_needs_admin_or_auditor(web: WebApp) -> None:
    web.add_user("agent", "agent")
    assert web.login("agent").status_code == 303
    page = web.client.get("/")
    assert page.status_code == 403
    assert "réservée aux administrateurs" in page.text
    assert web.client.get("/api/v1/devices").status_code == 403


def test_passwords_are_argon2_hashes(web: WebApp) -> None:
    with web.sessions() as session:
        user = session.scalars(select(User).where(User.username == "admin")).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_api_needs_a_token_or_a_session(web: WebApp) -> None:
    anonymous = web.client.get("/api/v1/devices")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    bad = web.client.get("/api/v1/devices", headers={"Authorization": "Bearer gp_nope"})
    assert bad.status_code == 401

    token = web.token("admin")
    ok = web.client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json()["total"] == 0

    web.login()
    assert web.client.get("/api/v1/devices").status_code == 200


def test_only_the_token_digest_is_stored(web: WebApp) -> None:
    token = web.token("admin")
    with web.sessions() as session:
        stored = session.scalars(select(ApiToken.token_sha256)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_secure_cookie_when_configured(db_url: str) -> None:
    with running_app(db_url, session_cookie_secure=True) as app:
        app.add_user()
        assert "secure" in app.login().headers["set-cookie"].lower()


def test_twenty_bad_logins_in_a_row_are_throttled(web: WebApp) -> None:
    """One username: locked after 5; many usernames from one IP: the IP is locked at 20."""
    codes = [web.login(password=f"wrong password {i}").status_code for i in range(20)]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    assert web.login().status_code == 429

    web.add_user("other", "auditor")
    for i in range(20):  # a different username each time: only the per-IP count can stop it
        assert web.login(f"guess-{i}", "wrong password").status_code in (401, 429)
    refused = web.login("other")  # a valid user, right password, same IP
    assert refused.status_code == 429
    assert "Trop de tentatives" in refused.text


def test_secure_cookies_and_hsts_by_default_outside_demo_mode(db_url: str) -> None:
    """Issue 12: a deployment that forgets GUICHET_SESSION_COOKIE_SECURE is still safe."""
    assert Settings(database_url=db_url, secret_key="k" * 32).session_cookie_secure is True
    assert Settings(database_url=db_url, demo=True).session_cookie_secure is False
    with running_app(db_url, session_cookie_secure=None) as app:
        app.add_user()
        page = app.client.get("/login")
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        assert "secure" in page.headers["set-cookie"].lower()
    with running_app(db_url, session_cookie_secure=None, demo=True) as demo:
        page = demo.client.get("/login")
        assert "strict-transport-security" not in page.headers
        assert "secure" not in page.headers["set-cookie"].lower()
