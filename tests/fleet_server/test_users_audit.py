"""Administrators manage users (reset, roles, deactivation), the optional TOTP second
factor, and the audit log with its CSV export — on the real app and database."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pyotp
from sqlalchemy import select

from fleet_server.models import AuditEntry, User
from fleet_server.security import audit
from fleet_server.web.format import format_datetime
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp

NEW_PASSWORD = "another long passphrase"


def csrf(web: WebApp, path: str = "/admin/users") -> str:
    match = CSRF_RE.search(web.client.get(path).text)
    assert match
    return match.group(1)


def user_id(web: WebApp, username: str) -> int:
    with web.sessions() as session:
        return session.scalars(select(User.id).where(User.username == username)).one()


def actions(web: WebApp) -> list[tuple[str, str, str]]:
    with web.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(r.actor, r.action, r.target) for r in rows]


def test_admin_creates_resets_and_deactivates_a_user(web: WebApp) -> None:
    form = {"username": "lea", "password": PASSWORD, "role": "agent", "service": "caf"}
    created = web.client.post("/admin/users", data=form | {"csrf_token": csrf(web)})
    assert [r.status_code for r in created.history] == [303]  # post/redirect/get
    assert 'data-user="lea"' in created.text
    assert "Utilisateur « lea » créé." in created.text
    uid = user_id(web, "lea")

    token = csrf(web)
    reset = web.client.post(
        f"/admin/users/{uid}/password", data={"password": NEW_PASSWORD, "csrf_token": token}
    )
    assert "Mot de passe de « lea » réinitialisé." in reset.text
    assert reset.url.path == "/admin/users"  # a reload does not reset it again
    web.client.post(f"/admin/users/{uid}/active", data={"active": "0", "csrf_token": token})

    other = running_client_login(web, "lea", NEW_PASSWORD)
    assert other == 401  # deactivated
    web.client.post(f"/admin/users/{uid}/active", data={"active": "1", "csrf_token": token})
    assert running_client_login(web, "lea", PASSWORD) == 401  # the old password is gone
    assert running_client_login(web, "lea", NEW_PASSWORD) == 303

    assert actions(web) == [
        ("admin", "user.create", "lea"),
        ("admin", "user.password_reset", "lea"),
        ("admin", "user.deactivate", "lea"),
        ("admin", "user.activate", "lea"),
    ]
    with web.sessions() as session:
        detail = session.scalars(select(AuditEntry.detail)).all()
    assert all(NEW_PASSWORD not in str(d) and PASSWORD not in str(d) for d in detail)


def running_client_login(web: WebApp, username: str, password: str) -> int:
    """Log in on a second client (the admin's own session stays)."""
    from fastapi.testclient import TestClient

    with TestClient(web.client.app, base_url="http://testserver") as client:
        token = CSRF_RE.search(client.get("/login").text)
        assert token
        data = {"username": username, "password": password, "csrf_token": token.group(1)}
        return client.post("/login", data=data, follow_redirects=False).status_code


def test_roles_need_their_scope_and_an_admin_cannot_demote_itself(web: WebApp) -> None:
    token = csrf(web)
    base = {"password": PASSWORD, "csrf_token": token}
    agent = web.client.post("/admin/users", data=base | {"username": "a", "role": "agent"})
    assert [r.status_code for r in agent.history] == [303]  # post/redirect/get
    assert "service" in agent.text
    desk = base | {"username": "r", "role": "reception", "site": "Site A"}
    refused = web.client.post("/admin/users", data=desk | {"site": ""})
    assert 'role="alert"' in refused.text
    form = refused.text.split('id="nouvel-utilisateur"')[1]
    assert 'name="username" value="r"' in form  # what was typed comes back…
    assert '<option value="reception" selected>' in form
    assert PASSWORD not in refused.text  # …but never the password
    short = base | {"username": "s", "role": "auditor", "password": "short"}
    assert 'role="alert"' in web.client.post("/admin/users", data=short).text
    me = user_id(web, "admin")
    demote = web.client.post(f"/admin/users/{me}", data={"role": "auditor", "csrf_token": token})
    assert "Vous ne pouvez pas retirer votre propre rôle d'administrateur." in demote.text.replace(
        "&#39;", "'"
    )
    assert actions(web) == []


def test_totp_second_factor_for_an_administrator(web: WebApp) -> None:
    page = web.client.get("/account/totp").text
    secret = re.search(r"<code data-totp-secret>([A-Z2-7]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    token = csrf(web, "/account/totp")
    wrong = web.client.post("/account/totp", data={"code": "000000", "csrf_token": token})
    assert [r.status_code for r in wrong.history] == [303]  # post/redirect/get
    assert "Code incorrect" in wrong.text
    assert "000000" not in wrong.text  # a code is never kept
    assert secret.group(1) in wrong.text  # the same secret to scan, still being set up
    web.client.post("/account/totp", data={"code": totp.now(), "csrf_token": token})
    assert "activée" in web.client.get("/account/totp").text

    web.client.cookies.clear()
    step = web.login()
    assert step.headers["location"] == "/login/totp"
    assert web.client.get("/", follow_redirects=False).status_code == 303  # not logged in yet
    form = CSRF_RE.search(web.client.get("/login/totp").text)
    assert form
    bad = web.client.post("/login/totp", data={"code": "123456", "csrf_token": form.group(1)})
    assert bad.status_code == 401
    good = web.client.post(
        "/login/totp",
        # The next step's code: the one that enabled the factor is used up (no replay).
        data={"code": totp.at(time.time() + 30), "csrf_token": form.group(1)},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert web.client.get("/").status_code == 200
    assert [a for _, a, _ in actions(web)] == ["user.totp_enable"]


def test_audit_page_and_csv_export(web: WebApp) -> None:
    token = csrf(web, "/admin/services")
    web.client.post("/admin/services", data={"code": "cpam", "label": "CPAM", "csrf_token": token})
    with web.sessions.begin() as session:  # a name a spreadsheet would take for a formula
        audit.record(session, "=HYPERLINK(1)", "user.update", "-2+3")
    page = web.client.get("/admin/audit")
    assert page.status_code == 200
    assert "Service créé" in page.text
    assert 'data-action="service.create"' in page.text
    assert "Libellé\u00a0: CPAM" in page.text  # French words, not ``label=CPAM``
    with web.sessions() as session:
        at = session.scalars(select(AuditEntry.at).where(AuditEntry.action == "service.create"))
        shown = format_datetime(at.one())  # Paris time, as on every other page
    assert f'<td class="when">{shown}</td>' in page.text
    assert "UTC" not in page.text

    export = web.client.get("/admin/audit.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:3] == ["horodatage_utc", "auteur", "action"]
    assert rows[1][1:5] == ["admin", "service.create", "Service créé", "cpam"]
    assert json.loads(rows[1][5]) == {"label": "CPAM"}  # the keys, as data: no Python repr
    assert rows[2][1] == "'=HYPERLINK(1)"  # formulas are neutralised, not run by a spreadsheet
    assert rows[2][4] == "'-2+3"
