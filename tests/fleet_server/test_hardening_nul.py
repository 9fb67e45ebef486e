"""A NUL character (U+0000) in a page's address or a form: PostgreSQL's text cannot hold it,
so it used to come back as a server error. Pages refuse it as a bad request (400, French
page); the JSON API refuses it as invalid (422, ``api/guards.py``)."""

from __future__ import annotations

import pytest

from tests.support.webapp import WebApp

PAGES = [
    "/calls?site=%00",
    "/?site=%00",
    "/devices/guichet%00a",
    "/admin/audit?action=%00",
    "/statistiques.csv?month=2026-01%00",
    "/statistiques?site=%00",
    "/login?next=/fleet%00",
]


@pytest.mark.parametrize("path", PAGES)
def test_a_nul_in_a_page_address_is_a_bad_request(web: WebApp, path: str) -> None:
    response = web.client.get(path, follow_redirects=False)
    assert response.status_code == 400
    assert "caractère nul" in response.text.lower()


def test_a_nul_in_a_form_is_a_bad_request_and_nothing_is_stored(web: WebApp) -> None:
    csrf = web.csrf("/admin/services")
    data = {"code": "caf", "name": "Caf\x00 intrus", "csrf_token": csrf}
    response = web.client.post("/admin/services", data=data, follow_redirects=False)
    assert response.status_code == 400
    assert "intrus" not in web.client.get("/admin/services").text


def test_a_nul_at_login_is_a_bad_request(web: WebApp) -> None:
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    data = {"username": "admin\x00", "password": "x", "csrf_token": web.csrf()}
    assert web.client.post("/login", data=data, follow_redirects=False).status_code == 400


def test_the_api_still_answers_422(web: WebApp) -> None:
    headers = {"Authorization": f"Bearer {web.token()}"}
    response = web.client.get("/api/v1/devices?site=%00", headers=headers)
    assert response.status_code == 422
