"""Issue 12, finding 5: a session cookie replayed after logout, or after an administrator
reset the password (or deactivated the user, or changed their role), must not log anyone in.
Sessions are server-side rows; the signed cookie only names one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fleet_server.models import Device, User
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        app.add_user("audrey", "auditor")
        with app.sessions.begin() as session:  # a site a reception user may be given
            session.add(Device(id="monts-de-chalus", site="Monts de Châlus"))
        yield app


def _logged_in_cookie(web: WebApp, username: str) -> str:
    web.client.cookies.clear()
    assert web.login(username).status_code == 303
    cookie = web.client.cookies.get("guichet_session")
    assert cookie
    return cookie


def _page_with(web: WebApp, cookie: str) -> int:
    """The status of ``/`` for a request carrying only this (stolen, replayed) cookie."""
    web.client.cookies.clear()
    web.client.cookies.set("guichet_session", cookie)
    return web.client.get("/", follow_redirects=False).status_code


def _user_id(web: WebApp, username: str) -> int:
    with web.sessions() as session:
        uid = session.scalar(select(User.id).where(User.username == username))
        assert uid is not None
        return uid


def test_a_cookie_replayed_after_logout_is_refused(web: WebApp) -> None:
    cookie = _logged_in_cookie(web, "audrey")
    assert _page_with(web, cookie) == 200
    token = CSRF_RE.search(web.client.get("/").text)
    assert token
    assert web.client.post("/logout", data={"csrf_token": token.group(1)}).status_code == 200
    assert _page_with(web, cookie) == 303  # back to the login form


def _as_admin(web: WebApp, path: str, data: dict[str, str]) -> None:
    web.client.cookies.clear()
    assert web.login("admin").status_code == 303
    token = re.search(CSRF_RE, web.client.get("/admin/users").text)
    assert token
    response = web.client.post(path, data=data | {"csrf_token": token.group(1)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("password", {"password": "a brand new password"}),
        ("active", {"active": "0"}),
        ("", {"role": "reception", "site": "Monts de Châlus"}),
    ],
)
def test_an_administrator_change_ends_the_users_sessions(
    web: WebApp, action: str, form: dict[str, str]
) -> None:
    cookie = _logged_in_cookie(web, "audrey")
    uid = _user_id(web, "audrey")
    _as_admin(web, f"/admin/users/{uid}/{action}".rstrip("/"), form)
    assert _page_with(web, cookie) == 303
    if action != "password":
        return
    web.client.cookies.clear()
    assert web.login("audrey", PASSWORD).status_code == 401  # the old password is gone too


def test_other_sessions_of_the_same_user_survive_a_logout(web: WebApp) -> None:
    first = _logged_in_cookie(web, "audrey")
    second = _logged_in_cookie(web, "audrey")
    token = CSRF_RE.search(web.client.get("/").text)
    assert token
    web.client.post("/logout", data={"csrf_token": token.group(1)})
    assert _page_with(web, second) == 303
    assert _page_with(web, first) == 200
