"""Issue 12, finding 2, tried as an attacker would on the real app and database: an
enrolment token used to take over a counter that already has credentials, an old request
approved or collected after the real one, a request that never expires."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from fleet_server.calls import admin as calls_admin
from fleet_server.models import Device, EnrolmentRequest
from tests.fleet_server.enrolment_support import (
    approve_all,
    ask,
    collect,
    csrf,
    enrolment_web,
    new_token,
    stored_device,
)
from tests.support.webapp import WebApp


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[WebApp]:
    with enrolment_web(db_url, tmp_path) as app:
        yield app


# --- finding 2: takeover of an existing counter ----------------------------------------


def test_a_token_cannot_take_over_a_counter_with_a_call_token(web: WebApp) -> None:
    """The call-token page (or the CLI) made this counter: no hardware id yet, credentials."""
    with web.sessions.begin() as session:
        session.add(Device(id="vallee-de-la-gorre", site="Vallée de la Gorre", name="Mairie"))
    with web.sessions() as session:
        call_token = calls_admin.new_call_token(session, "vallee-de-la-gorre")
    token = new_token(web, pre_approved="1")  # for another site: the attacker's own token
    asked = ask(web, token, "vallee-de-la-gorre")
    assert asked.status_code == 403
    device = stored_device(web, "vallee-de-la-gorre")
    assert device.site == "Vallée de la Gorre"
    assert device.call_token_sha256 is not None
    with web.sessions() as session:  # the real counter's call token still works
        assert calls_admin.device_for_call_token(session, call_token) is not None


def test_an_old_pending_request_cannot_be_collected_after_the_real_one(web: WebApp) -> None:
    token = new_token(web)
    old = ask(web, token, "monts-de-chalus", "serial:old-attacker").json()["poll_secret"]
    real = ask(web, token, "monts-de-chalus", "serial:real-pi").json()["poll_secret"]
    ids = sorted(approve_all(web))
    assert len(ids) == 2
    # The administrator approved the real one first… in fact both got approved: collect real.
    assert collect(web, real).json()["state"] == "collected"
    stolen = collect(web, old).json()
    assert stolen["broker_password"] is None
    assert stolen["call_token"] is None
    assert stored_device(web, "monts-de-chalus").hardware_id == "serial:real-pi"


def test_a_request_is_rechecked_when_approved(web: WebApp) -> None:
    token = new_token(web)
    ask(web, token, "monts-de-chalus", "serial:attacker").json()
    # Meanwhile the counter got credentials another way (the call-token page).
    with web.sessions.begin() as session:
        session.add(Device(id="monts-de-chalus", site="Monts de Châlus", name="Mairie"))
    with web.sessions() as session:
        calls_admin.new_call_token(session, "monts-de-chalus")
    page = web.client.get("/admin/enrolment").text
    request_id = re.search(r'data-request="(\d+)"', page)
    assert request_id
    decided = web.client.post(
        f"/admin/enrolment/requests/{request_id.group(1)}",
        data={"decision": "approve", "csrf_token": csrf(web)},
    )
    assert decided.status_code == 409
    assert "déjà" in decided.text


def test_pending_requests_and_their_poll_secrets_expire(web: WebApp) -> None:
    token = new_token(web, pre_approved="1")
    poll = ask(web, token, "guichet-lent").json()["poll_secret"]
    with web.sessions.begin() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(EnrolmentRequest).values(expires_at=past))
    late = collect(web, poll)
    assert late.status_code == 401
    with web.sessions() as session:
        assert session.get(Device, "guichet-lent") is None


def test_an_administrator_re_enrols_a_counter_by_revoking_it_first(web: WebApp) -> None:
    token = new_token(web, pre_approved="1")
    first = collect(web, ask(web, token, "guichet-a", "serial:old-pi").json()["poll_secret"])
    assert first.json()["state"] == "collected"
    assert ask(web, token, "guichet-a", "serial:new-pi").status_code == 403
    web.client.post("/devices/guichet-a/revoke", data={"csrf_token": csrf(web)})
    again = collect(web, ask(web, token, "guichet-a", "serial:new-pi").json()["poll_secret"])
    assert again.json()["state"] == "collected"
    assert stored_device(web, "guichet-a").hardware_id == "serial:new-pi"
