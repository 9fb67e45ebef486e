"""Issue 12, finding 7: any ``Authorization: Bearer …`` header, even a made-up one, skipped
the CSRF check on cookie-authenticated routes. Only a token that authenticates does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fleet_server.models import User
from tests.support.webapp import WebApp

FORM = {"username": "intrus", "password": "a long enough password", "role": "admin"}


def _created(web: WebApp) -> bool:
    with web.sessions() as session:
        return session.scalar(select(User).where(User.username == "intrus")) is not None


@pytest.mark.parametrize("bearer", ["junk", "gp_" + "x" * 43, ""])
def test_a_forged_bearer_header_does_not_skip_csrf(web: WebApp, bearer: str) -> None:
    """The admin's browser sends its cookie; the forged request adds a bearer header."""
    response = web.client.post(
        "/admin/users", data=FORM, headers={"Authorization": f"Bearer {bearer}"}
    )
    assert response.status_code == 403
    assert "formulaire a expiré" in response.text
    assert not _created(web)


def test_a_valid_token_of_someone_else_does_not_ride_the_cookie(web: WebApp) -> None:
    web.add_user("audrey", "auditor")
    token = web.token("audrey")
    response = web.client.post(
        "/admin/users",
        data=FORM,
        headers={"Authorization": f"Bearer {token}"},
        follow_redirects=False,
    )
    assert response.status_code in (303, 403)  # never the admin's cookie acting unchecked
    assert not _created(web)
