"""Issue 15 on the counter page: its spoken screens turned on or off (admin only, CSRF,
audited), the counter's retained config carrying the choice (None: the counter's own); and
where the counter's call is heard, from its telemetry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleet_server.models import AuditEntry, Device
from fleet_server.mqtt.config_push import ConfigPusher
from guichet.contract import utcnow
from tests.support.webapp import WebApp, running_app, seed_devices

DEVICE = "guichet-00000"


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        app.add_user("audrey", "auditor")
        seed_devices(app.sessions, 1)
        yield app


def pushed_speech(web: WebApp) -> bool | None:
    ctx: Any = web.client.app.state.ctx  # type: ignore[attr-defined]
    with web.sessions() as session:
        config = ConfigPusher(ctx).build(session, DEVICE, utcnow(), None)
    assert config is not None
    return config.speech


def test_the_admin_sets_speech_and_the_config_carries_it(web: WebApp) -> None:
    assert pushed_speech(web) is None  # the counter's own setting
    web.login("audrey")
    refused = web.client.post(f"/devices/{DEVICE}/speech", data={"speech": "on"})
    assert refused.status_code == 403
    web.login()
    csrf = web.csrf("/")
    page = web.client.post(f"/devices/{DEVICE}/speech", data={"speech": "on", "csrf_token": csrf})
    assert "Lecture à voix haute activée : chaque écran est lu." in page.text
    assert "<dt>Lecture à voix haute</dt><dd>activée</dd>" in page.text
    with web.sessions() as session:
        assert session.get(Device, DEVICE).speech is True  # type: ignore[union-attr]
        entry = session.query(AuditEntry).filter_by(action="device.speech").one()
        assert entry.detail == {"speech": True}
    assert pushed_speech(web) is True

    web.client.post(f"/devices/{DEVICE}/speech", data={"speech": "off", "csrf_token": csrf})
    assert pushed_speech(web) is False
    back = web.client.post(f"/devices/{DEVICE}/speech", data={"speech": "", "csrf_token": csrf})
    assert "comme le réglage du guichet" in back.text
    assert pushed_speech(web) is None
    odd = web.client.post(f"/devices/{DEVICE}/speech", data={"speech": "yes", "csrf_token": csrf})
    assert "Choix inconnu." in odd.text
    nowhere = web.client.post("/devices/nope/speech", data={"speech": "on", "csrf_token": csrf})
    assert nowhere.status_code == 404


def test_the_counter_page_says_where_the_call_is_heard(web: WebApp) -> None:
    """Issue 15, private listening: the last telemetry's audio route, in French."""
    web.login()
    with web.sessions.begin() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        device.last_telemetry = (device.last_telemetry or {}) | {"audio_route": "headset"}
    page = web.client.get(f"/devices/{DEVICE}").text
    assert "<dt>Son de l'appel</dt><dd>Casque (écoute privée)</dd>" in page
