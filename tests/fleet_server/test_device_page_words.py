"""A counter's page says everything in French: its service by label, why its state changed,
its events' details (no ``key : value`` with English keys), the simulated peripherals' names."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.hw.ports.camera import SIMULATED_CAMERA_MODEL
from fleet_server.models import CallRecord, Device, EventRecord, StatusChange
from tests.support.webapp import WebApp, running_app

NBSP = "\u00a0"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebApp]:
    with running_app(f"sqlite:///{tmp_path}/fleet.sqlite3") as app:
        app.add_user()
        assert app.login().status_code == 303
        yield app


def _seed(web: WebApp) -> None:
    now = datetime.now(UTC)
    # What the simulated camera reports (appliance.hw.ports.camera), as stored from telemetry.
    telemetry = {"peripherals": {"camera": {"health": "ok", "model": SIMULATED_CAMERA_MODEL}}}
    event = {"call_id": "c-1", "service": "france-travail", "duration_s": 75.0,
             "reason": "hangup_counter"}  # fmt: skip
    with web.sessions.begin() as session:
        session.add(Device(id="g1", site="Monts de Châlus", name="Mairie", state="offline",
                           service="france-travail", last_telemetry=telemetry))  # fmt: skip
        session.add_all(
            [
                StatusChange(
                    device_id="g1", at=now - timedelta(hours=1), state="online", reason="connected"
                ),
                StatusChange(device_id="g1", at=now, state="offline", reason="shutdown"),
                EventRecord(
                    id=uuid.uuid4(),
                    device_id="g1",
                    at=now,
                    received_at=now,
                    kind="call_ended",
                    data=event,
                ),
                CallRecord(
                    id=uuid.uuid4(),
                    device_id="g1",
                    site="Monts de Châlus",
                    service="france-travail",
                    requested_at=now - timedelta(minutes=3),
                    answered_at=now - timedelta(minutes=2),
                    ended_at=now,
                    end_reason="hangup_counter",
                ),
            ]
        )


def test_a_counters_page_is_all_french(web: WebApp) -> None:
    _seed(web)
    text = html.unescape(web.client.get("/devices/g1").text)
    assert "Service fixe</dt><dd>France Travail</dd>" in text
    assert "<td>France Travail</td>" in text  # the call's service, by its label
    assert "Arrêt normal du guichet" in text
    assert "Connexion du guichet" in text
    details = [
        f"Appel{NBSP}: c-1",
        f"Service{NBSP}: France Travail",
        f"Durée{NBSP}: 1 min",
        f"Fin{NBSP}: Raccroché au guichet",
    ]
    assert " · ".join(details) in text
    assert "Caméra simulée" in text
    for raw in (
        "Simulated",
        "simulated",
        ">shutdown<",
        ">connected<",
        "duration_s",
        "france-travail :",
    ):
        assert raw not in text
