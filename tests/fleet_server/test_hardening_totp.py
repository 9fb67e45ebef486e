"""Issue 12, finding 9: a TOTP code seen once (over a shoulder, in a phished form) could be
used again within its 30-second window. The last used step is remembered per user."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyotp
import pytest
from sqlalchemy import update

from fleet_server.models import User
from tests.support.webapp import CSRF_RE, WebApp, running_app

SECRET = pyotp.random_base32()


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        with app.sessions.begin() as session:
            session.execute(update(User).values(totp_secret=SECRET))
        yield app


def _second_step(web: WebApp, code: str) -> int:
    web.client.cookies.clear()
    assert web.login().headers["location"] == "/login/totp"
    form = CSRF_RE.search(web.client.get("/login/totp").text)
    assert form
    data = {"code": code, "csrf_token": form.group(1)}
    return web.client.post("/login/totp", data=data, follow_redirects=False).status_code


def test_a_code_cannot_be_used_twice(web: WebApp) -> None:
    code = pyotp.TOTP(SECRET).now()
    assert _second_step(web, code) == 303
    assert _second_step(web, code) == 401  # the same code, replayed by someone else


def test_an_older_code_is_refused_after_a_newer_one(web: WebApp) -> None:
    totp = pyotp.TOTP(SECRET)
    newer, older = totp.at(time.time() + 30), totp.now()
    assert _second_step(web, newer) == 303
    assert _second_step(web, older) == 401
