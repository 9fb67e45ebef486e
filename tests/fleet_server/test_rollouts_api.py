"""Rollouts through the JSON API (issue 13, docs/updates.md): an administrator creates one on
an uploaded release (its waves planned over the enrolled counters not yet on it), pauses,
resumes and cancels it, each act in the audit log; an auditor reads but is refused every
act, an anonymous caller too; an unknown rollout or release is a 404, an act the state
forbids a 409 with its French reason, and so are a forged site or counter (never planned as
an empty wave) and a night window given by half. The real app on a fresh database (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, CounterUpdateRecord, Device, Release, RolloutRecord
from tests.support.webapp import WebApp, running_app

ENROLLED = ("gorre-01", "gorre-02", "chalus-01")  # on 1.4.0: the rollout's targets
ON_IT = "chalus-02"  # already runs 1.5.0
NOT_ENROLLED = "bussiere-01"  # no broker account: it could not fetch the bundle


@pytest.fixture
def app(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url, public_url="https://flotte.example.fr") as web:
        web.add_user("admin", "admin")
        web.add_user("lecteur", "auditor")
        now = datetime.now(UTC)
        with web.sessions.begin() as session:
            for device_id in (*ENROLLED, ON_IT, NOT_ENROLLED):
                session.add(
                    Device(
                        id=device_id, site=device_id.split("-")[0], name=device_id,
                        state="online", software_version="1.5.0" if device_id == ON_IT
                        else "1.4.0",
                        broker_password_hash=None if device_id == NOT_ENROLLED else "$7$x",
                    )
                )  # fmt: skip
            session.add(
                Release(
                    version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10,
                    sha256="a" * 64, path="/nowhere.raucb", uploaded_at=now, uploaded_by="admin",
                )
            )  # fmt: skip
        yield web


def _as(app: WebApp, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.token(user)}"}


def _release_id(app: WebApp) -> int:
    with app.sessions() as session:
        release = session.scalar(select(Release))
        assert release is not None
        return release.id


def _create(app: WebApp, user: str = "admin", **extra: Any) -> Any:
    body = {"release_id": _release_id(app), "waves": [{"kind": "canary", "count": 1},
                                                      {"kind": "rest"}]} | extra  # fmt: skip
    return app.client.post("/api/v1/rollouts", json=body, headers=_as(app, user))


def _act(app: WebApp, rollout_id: int, action: str, user: str = "admin") -> Any:
    return app.client.post(
        f"/api/v1/rollouts/{rollout_id}/actions", json={"action": action}, headers=_as(app, user)
    )


def test_an_administrator_creates_pauses_resumes_and_cancels(app: WebApp) -> None:
    created = _create(app)
    assert created.status_code == 201, created.text
    rollout = created.json()
    assert rollout["state"] == "running"
    assert rollout["release"] == "1.5.0"
    assert rollout["wave_specs"] == [{"kind": "canary", "count": 1}, {"kind": "rest"}]
    assert len(rollout["waves"]) == 2
    assert len(rollout["waves"][0]) == 1  # one canary
    assert sorted(rollout["waves"][0] + rollout["waves"][1]) == sorted(ENROLLED)
    assert {c["device_id"]: c["wave"] for c in rollout["counters"]} == {
        d: (0 if d in rollout["waves"][0] else 1) for d in ENROLLED
    }
    assert {c["state_label"] for c in rollout["counters"]} == {"En attente"}
    rollout_id = rollout["id"]

    paused = _act(app, rollout_id, "pause")
    assert paused.status_code == 200, paused.text
    assert (paused.json()["state"], paused.json()["state_label"]) == ("paused", "En pause")
    again = _act(app, rollout_id, "pause")
    assert again.status_code == 409
    assert again.json()["detail"]  # the French reason
    assert _act(app, rollout_id, "resume").json()["state"] == "running"
    assert _act(app, rollout_id, "cancel").json()["state"] == "cancelled"
    assert _act(app, rollout_id, "resume").status_code == 409

    read = app.client.get(f"/api/v1/rollouts/{rollout_id}", headers=_as(app, "lecteur"))
    assert read.status_code == 200
    assert read.json()["state"] == "cancelled"
    listed = app.client.get("/api/v1/rollouts", headers=_as(app, "lecteur")).json()
    assert [r["id"] for r in listed] == [rollout_id]
    with app.sessions() as session:
        acts = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "admin").order_by(AuditEntry.id)
        )
        assert [a for a in acts if a.startswith("rollout.")] == [
            "rollout.create", "rollout.start", "rollout.pause", "rollout.resume",
            "rollout.cancel",
        ]  # fmt: skip


def test_a_draft_is_started_later(app: WebApp) -> None:
    draft = _create(app, start=False)
    assert draft.status_code == 201
    assert (draft.json()["state"], draft.json()["waves"]) == ("draft", [])
    started = _act(app, draft.json()["id"], "start")
    assert started.status_code == 200
    assert started.json()["state"] == "running"
    assert len(started.json()["counters"]) == len(ENROLLED)


def test_an_auditor_and_an_anonymous_caller_are_refused_every_act(app: WebApp) -> None:
    assert _create(app, user="lecteur").status_code == 403
    anonymous = app.client.post(
        "/api/v1/rollouts", json={"release_id": _release_id(app), "waves": [{"kind": "rest"}]}
    )
    assert anonymous.status_code == 401
    with app.sessions() as session:
        assert session.scalar(select(RolloutRecord)) is None
    rollout_id = _create(app).json()["id"]
    assert _act(app, rollout_id, "pause", user="lecteur").status_code == 403
    refused = app.client.post(f"/api/v1/rollouts/{rollout_id}/actions", json={"action": "cancel"})
    assert refused.status_code == 401
    with app.sessions() as session:
        record = session.get(RolloutRecord, rollout_id)
        assert record is not None
        assert record.state == "running"
        assert session.scalar(select(CounterUpdateRecord.rollout_id).limit(1)) == rollout_id


def test_unknown_and_invalid(app: WebApp) -> None:
    assert app.client.get("/api/v1/rollouts/999", headers=_as(app, "lecteur")).status_code == 404
    assert _act(app, 999, "pause").status_code == 404
    unknown_release = _create(app, release_id=999)
    assert unknown_release.status_code == 404
    assert unknown_release.json()["detail"] == "Version inconnue."
    assert _create(app, release_id=2**31).status_code == 422  # past an INTEGER: refused early
    assert _create(app, waves=[]).status_code == 422
    assert _act(app, 1, "explode").status_code == 422
    bad_rest = _create(app, waves=[{"kind": "rest"}, {"kind": "canary", "count": 1}])
    assert bad_rest.status_code == 409  # waves that cannot be planned: the rest comes last
    assert bad_rest.json()["detail"]
    with app.sessions() as session:
        assert session.scalar(select(RolloutRecord)) is None


def test_forged_sites_and_counters_are_refused_not_planned(app: WebApp) -> None:
    for wave, reason in (
        ({"kind": "sites", "sites": ["Atlantide"]},
         "Site inconnu ou sans guichet en service : « Atlantide »."),
        ({"kind": "sites", "sites": ["gorre", "bussiere"]},  # its only counter: not enrolled
         "Site inconnu ou sans guichet en service : « bussiere »."),
        ({"kind": "devices", "device_ids": ["gorre-01", "intrus-99"]},
         "Guichet inconnu ou retiré : « intrus-99 »."),
        ({"kind": "devices", "device_ids": [NOT_ENROLLED]},
         f"Guichet inconnu ou retiré : « {NOT_ENROLLED} »."),
    ):  # fmt: skip
        refused = _create(app, waves=[wave, {"kind": "rest"}])
        assert refused.status_code == 409, wave
        assert refused.json()["detail"] == reason
    half = _create(app, night_start="22:00")
    assert half.status_code == 409
    assert half.json()["detail"].startswith("Plage de nuit : indiquez")
    assert _create(app, night_start="23:50", night_end="00:20").status_code == 409  # < 45 min
    with app.sessions() as session:
        assert session.scalar(select(RolloutRecord)) is None
        assert not [a for a in session.scalars(select(AuditEntry.action)) if "rollout" in a]


def test_chosen_sites_at_night(app: WebApp) -> None:
    waves = [{"kind": "sites", "sites": ["chalus"]}, {"kind": "rest"}]
    created = _create(app, waves=waves, night_start="22:00", night_end="06:00")
    assert created.status_code == 201, created.text
    rollout = created.json()
    assert (rollout["night_start"], rollout["night_end"]) == ("22:00:00", "06:00:00")
    assert rollout["waves"] == [["chalus-01"], ["gorre-01", "gorre-02"]]  # chalus-02: on it
    with app.sessions() as session:
        created_entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "rollout.create")
        ).one()
        assert created_entry.detail["night"] == "22:00–06:00"
