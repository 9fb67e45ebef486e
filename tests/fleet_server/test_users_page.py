"""The users page: a reception user's site is chosen among the known sites (counters in
service, enrolment tokens still usable), never typed; a new username has a sane shape."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import segno
from sqlalchemy import select

from fleet_server.models import Device, User
from fleet_server.security import auth, enrolment, sites
from guichet.contract import utcnow
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebApp]:
    with running_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as app:
        app.add_user("admin", "admin")
        assert app.login().status_code == 303
        with app.sessions.begin() as session:
            session.add(Device(id="x1", site="Vallée de la Gorre", name="Mairie"))
            session.add(Device(id="x2", site="Ancien site", name="Mairie", revoked_at=utcnow()))
            enrolment.create_token(
                session,
                site="Valence",
                valid_hours=24,
                max_uses=1,
                pre_approved=False,
                actor="admin",
            )
        yield app


def _create(web: WebApp, **form: str) -> str:
    token = CSRF_RE.search(web.client.get("/admin/users").text)
    assert token
    data = {"password": PASSWORD, "csrf_token": token.group(1)} | form
    response = web.client.post("/admin/users", data=data)
    assert [r.status_code for r in response.history] == [303]  # post/redirect/get
    outcome = "refused" if 'role="alert"' in response.text else "made"
    return f"{outcome} {html.unescape(response.text)}"


def test_known_sites_are_counters_in_service_and_sites_being_equipped(web: WebApp) -> None:
    with web.sessions() as session:
        assert sites.known_sites(session) == ["Valence", "Vallée de la Gorre"]
    page = html.unescape(web.client.get("/admin/users").text)
    assert '<option value="Vallée de la Gorre" >Vallée de la Gorre</option>' in page
    assert 'name="site" maxlength' not in page  # no free text any more


def test_a_reception_user_gets_a_known_site_only(web: WebApp) -> None:
    refused = _create(web, username="accueil-z", role="reception", site="Site Z")
    assert refused.startswith("refused")
    assert "Aucun guichet n'est installé sur le site « Site Z » : choisissez un site" in refused
    revoked = _create(web, username="accueil-old", role="reception", site="Ancien site")
    assert revoked.startswith("refused")
    made = _create(web, username="accueil-gorre", role="reception", site="Vallée de la Gorre")
    assert made.startswith("made")
    with web.sessions() as session:
        user = session.scalars(select(User).where(User.username == "accueil-gorre")).one()
        assert (user.role, user.site) == ("reception", "Vallée de la Gorre")


def test_a_site_without_counters_is_flagged_on_its_users_row(web: WebApp) -> None:
    with web.sessions.begin() as session:  # from before sites were chosen from a list
        auth.upsert_user(session, "accueil-y", PASSWORD, role="reception", site="Site Y")
    page = html.unescape(web.client.get("/admin/users").text)
    assert '<option value="Site Y" selected>Site Y (aucun guichet)</option>' in page


@pytest.mark.parametrize("name", ["Jean Dupont", "Éloïse", "-x", "agent/caf", "Admin"])
def test_a_new_username_has_a_sane_shape(web: WebApp, name: str) -> None:
    refused = _create(web, username=name, role="auditor")
    assert refused.startswith("refused")
    assert "lettres minuscules sans accents" in refused
    with web.sessions() as session:
        assert session.scalar(select(User).where(User.username == name)) is None


def test_an_older_username_keeps_working(web: WebApp) -> None:
    with web.sessions.begin() as session:
        session.add(
            User(username="Jean Dupont", password_hash=auth.hash_password(PASSWORD),
                 role="auditor", active=True, created_at=utcnow() - timedelta(days=400))
        )  # fmt: skip
    with web.sessions.begin() as session:  # the CLI resets its password: no refusal
        auth.upsert_user(session, "Jean Dupont", PASSWORD + "!", role="auditor")


def test_the_second_factor_page_shows_its_uri_as_a_qr_code(web: WebApp) -> None:
    page = web.client.get("/account/totp").text
    secret = re.search(r"<code data-totp-secret>([A-Z2-7]+)</code>", page)
    assert secret
    qr = re.search(r'<svg role="img" [^>]*class="totp-qr">.*?</svg>', page, re.S)
    assert qr, "no QR code"
    expected = segno.make(auth.totp_uri(secret.group(1), "admin"), error="m")
    drawn = re.search(r' d="([^"]+)"', qr.group(0))
    assert drawn
    assert drawn.group(1) in expected.svg_inline()  # the same modules: the same URI
    assert "otpauth://" not in qr.group(0)  # drawn, not written out
