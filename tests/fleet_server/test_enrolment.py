"""Enrolment on the real app and database: tokens, pending counters, approval, credentials
issued once and stored as hashes, refusals, revocation, and the audit trail."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from fleet_server.models import AuditEntry, Device, EnrolmentToken
from guichet.enrolment_code import short_code
from tests.fleet_server.enrolment_support import csrf
from tests.support.webapp import WebApp

TOKEN_RE = re.compile(r"<code data-enrolment-token>(gpe_[^<]+)</code>")


def new_token(web: WebApp, **form: Any) -> str:
    data = {"site": "Monts de Châlus", "valid_hours": 2, "max_uses": 1} | form
    page = web.client.post("/admin/enrolment/tokens", data=data | {"csrf_token": csrf(web)})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    match = TOKEN_RE.search(page.text)
    assert match
    return match.group(1)


def ask(
    web: WebApp, token: str, device_id: str = "monts-de-chalus", hw: str = "serial:abc1"
) -> Any:
    body = {"token": token, "device_id": device_id, "hardware_id": hw, "name": "Mairie"}
    return web.client.post("/api/v1/enrol", json=body)


def collect(web: WebApp, poll: str) -> Any:
    return web.client.post("/api/v1/enrol/collect", headers={"Authorization": f"Bearer {poll}"})


def test_enrolment_with_approval(web: WebApp) -> None:
    token = new_token(web)
    asked = ask(web, token)
    assert asked.status_code == 202
    assert asked.json()["state"] == "pending"
    poll = asked.json()["poll_secret"]
    assert collect(web, poll).json() == {
        "state": "pending", "device_id": None, "broker_username": None,
        "broker_password": None, "call_token": None,
    }  # fmt: skip

    page = web.client.get("/admin/enrolment").text
    pending = re.search(r'data-request="(\d+)" data-device-id="monts-de-chalus"', page)
    assert pending, "the counter is listed as pending"
    # Beside it, the code the waiting counter shows on its screen.
    assert f"<code data-enrolment-code>{short_code(poll)}</code>" in page
    approve = {"decision": "approve", "csrf_token": csrf(web)}
    web.client.post(f"/admin/enrolment/requests/{pending.group(1)}", data=approve)

    creds = collect(web, poll).json()
    assert creds["state"] == "collected"
    assert creds["broker_username"] == "monts-de-chalus"
    assert len(creds["broker_password"]) >= 43
    assert creds["call_token"].startswith("gpc_")
    again = collect(web, poll).json()
    assert again["state"] == "collected"
    assert again["broker_password"] is None  # given once

    with web.sessions() as session:
        device = session.get(Device, "monts-de-chalus")
        assert device is not None
        assert device.site == "Monts de Châlus"
        assert device.hardware_id == "serial:abc1"
        assert device.broker_password_hash is not None
        assert device.broker_password_hash.startswith("$7$101$")
        assert creds["broker_password"] not in device.broker_password_hash
        digest = hashlib.sha256(creds["call_token"].encode()).hexdigest()
        assert device.call_token_sha256 == digest
        stored = session.scalars(select(EnrolmentToken.token_sha256)).one()
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        audit = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert audit == ["enrolment_token.create", "enrolment.approve"]

    with web.client.websocket_connect(
        "/ws/counter", headers={"Authorization": f"Bearer {creds['call_token']}"}
    ) as ws:
        assert ws.receive_json()["type"] == "welcome"


def test_the_new_token_is_explained_with_the_technicians_keys(web: WebApp) -> None:
    data = {"site": "Monts de Châlus", "valid_hours": 2, "max_uses": 1, "csrf_token": csrf(web)}
    page = web.client.post("/admin/enrolment/tokens", data=data).text
    assert "[flotte]" in page
    assert "site_web = " in page
    assert 'jeton = "' in page
    assert "enrolment_token" not in page
    assert "[fleet]" not in page


def test_pre_approved_token_and_its_limits(web: WebApp) -> None:
    token = new_token(web, pre_approved="1", max_uses=2)
    first = ask(web, token, "guichet-a", "serial:0001")
    assert first.json()["state"] == "approved"
    assert collect(web, first.json()["poll_secret"]).json()["state"] == "collected"
    # The same counter id on other hardware cannot take the enrolled counter over.
    assert ask(web, token, "guichet-a", "serial:9999").status_code == 403
    assert ask(web, token, "guichet-b", "serial:0002").status_code == 202
    assert ask(web, token, "guichet-c", "serial:0003").status_code == 403  # used up


def test_bad_expired_and_revoked_tokens_are_refused(web: WebApp) -> None:
    assert ask(web, "gpe_" + "x" * 43).status_code == 403
    token = new_token(web)
    with web.sessions.begin() as session:
        past = datetime.now(UTC) - timedelta(minutes=1)
        session.execute(update(EnrolmentToken).values(expires_at=past))
    assert ask(web, token).status_code == 403
    other = new_token(web)
    with web.sessions() as session:
        token_id = max(session.scalars(select(EnrolmentToken.id)).all())
    web.client.post(f"/admin/enrolment/tokens/{token_id}/revoke", data={"csrf_token": csrf(web)})
    assert ask(web, other).status_code == 403
    assert ask(web, new_token(web), "Not An Id!").status_code in (403, 422)
    assert collect(web, "gpp_" + "y" * 43).status_code == 401


def test_revocation_deletes_credentials_and_refuses_signalling(web: WebApp) -> None:
    token = new_token(web, pre_approved="1")
    creds = collect(web, ask(web, token).json()["poll_secret"]).json()
    bearer = {"Authorization": f"Bearer {creds['call_token']}"}
    with web.client.websocket_connect("/ws/counter", headers=bearer) as live:
        assert live.receive_json()["type"] == "welcome"
        revoked = web.client.post(
            "/devices/monts-de-chalus/revoke",
            data={"csrf_token": csrf(web)},
            follow_redirects=False,
        )
        assert revoked.status_code == 303
        with pytest.raises(Exception) as closed:
            live.receive_json()
        assert getattr(closed.value, "code", None) == 4401
    with web.sessions() as session:
        device = session.get(Device, "monts-de-chalus")
        assert device is not None
        assert (device.broker_password_hash, device.call_token_sha256) == (None, None)
        assert device.revoked_at is not None
        assert "device.revoke" in session.scalars(select(AuditEntry.action)).all()
    with web.client.websocket_connect("/ws/counter", headers=bearer) as ws:
        with pytest.raises(Exception) as refused:
            ws.receive_json()
        assert getattr(refused.value, "code", None) == 4401


def test_a_refused_token_form_comes_back_filled_in(web: WebApp) -> None:
    """Issue 17: post/redirect/get, the site and figures kept; the page is a GET again."""
    data = {"site": "Monts de Châlus", "valid_hours": 2, "max_uses": 9999, "pre_approved": "1"}
    page = web.client.post("/admin/enrolment/tokens", data=data | {"csrf_token": csrf(web)})
    assert [r.status_code for r in page.history] == [303]
    assert page.url.path == "/admin/enrolment"
    assert "Nombre d'utilisations entre 1 et 500." in page.text.replace("&#39;", "'")
    assert 'name="site" value="Monts de Châlus"' in page.text
    assert 'name="max_uses" value="9999"' in page.text
    assert 'name="pre_approved" value="1" checked' in page.text
    assert TOKEN_RE.search(page.text) is None


def test_the_enrolled_counters_are_paged_and_searched(web: WebApp) -> None:
    """At fleet scale the page lists 50 enrolled counters at a time, each once, and finds one
    by part of its id or site (issue 17, point 8); never-enrolled counters are not listed."""
    with web.sessions.begin() as session:
        for n in range(120):
            site = "Oradour" if n % 3 == 0 else "Cussac"
            session.add(Device(id=f"g-{n:03d}", site=site, hardware_id=f"serial:{n}"))
        session.add(Device(id="g-jamais", site="Cussac"))  # reported, never enrolled

    def listed(html: str) -> list[str]:
        return re.findall(r'<tr data-device-id="([^"]+)">', html)

    seen: list[str] = []
    url: str | None = "/admin/enrolment"
    pages = 0
    while url is not None:
        page = web.client.get(url)
        assert page.status_code == 200
        rows = listed(page.text)
        assert len(rows) <= 50
        seen += rows
        pages += 1
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert pages == 3
    assert seen == [f"g-{n:03d}" for n in range(120)]
    first = web.client.get("/admin/enrolment").text
    assert "50 affichés sur 120 guichets" in first
    searched = web.client.get("/admin/enrolment", params={"guichet": "g-01"})
    assert listed(searched.text) == [f"g-{n:03d}" for n in range(10, 20)]
    by_site = listed(web.client.get("/admin/enrolment", params={"guichet": "orad"}).text)
    assert len(by_site) == 40
    nothing = web.client.get("/admin/enrolment", params={"guichet": "jamais"}).text
    assert listed(nothing) == []
    assert "Aucun guichet enrôlé ne correspond à « jamais »." in nothing
