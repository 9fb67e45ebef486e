"""Helpers for the enrolment hardening tests: the real app with managed broker files, an
administrator logged in, and the enrolment API as a counter (or an attacker) calls it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleet_server.models import Device
from tests.support.webapp import CSRF_RE, WebApp, running_app

TOKEN_RE = re.compile(r"<code data-enrolment-token>(gpe_[^<]+)</code>")
SERVER_USER, SERVER_PASSWORD = "guichet-fleet-server", "server-password-0123456789"


@contextmanager
def enrolment_web(db_url: str, tmp_path: Path) -> Iterator[WebApp]:
    with running_app(
        db_url,
        broker_files_dir=tmp_path / "broker",
        mqtt_username=SERVER_USER,
        mqtt_password=SERVER_PASSWORD,
    ) as app:
        app.add_user("admin", "admin")
        assert app.login().status_code == 303
        yield app


def csrf(web: WebApp) -> str:
    match = CSRF_RE.search(web.client.get("/admin/enrolment").text)
    assert match
    return match.group(1)


def new_token(web: WebApp, **form: Any) -> str:
    data = {"site": "Monts de Châlus", "valid_hours": 2, "max_uses": 5} | form
    page = web.client.post("/admin/enrolment/tokens", data=data | {"csrf_token": csrf(web)})
    match = TOKEN_RE.search(page.text)
    assert match, page.text
    return match.group(1)


def ask(web: WebApp, token: str, device_id: str, hw: str = "serial:attacker") -> Any:
    body = {"token": token, "device_id": device_id, "hardware_id": hw, "name": "Pirate"}
    return web.client.post("/api/v1/enrol", json=body)


def collect(web: WebApp, poll: str) -> Any:
    return web.client.post("/api/v1/enrol/collect", headers={"Authorization": f"Bearer {poll}"})


def approve_all(web: WebApp) -> list[int]:
    page = web.client.get("/admin/enrolment").text
    ids = [int(i) for i in re.findall(r'data-request="(\d+)"', page)]
    for request_id in ids:
        web.client.post(
            f"/admin/enrolment/requests/{request_id}",
            data={"decision": "approve", "csrf_token": csrf(web)},
        )
    return ids


def stored_device(web: WebApp, device_id: str) -> Device:
    with web.sessions() as session:
        device = session.get(Device, device_id)
        assert device is not None
        return device
