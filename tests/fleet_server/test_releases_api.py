"""Releases and the counters' bundle download (docs/updates.md), on the real app, real RAUC
bundles and both databases: an administrator's upload is checked and kept on disk, with its
row and audit entry; refusals are French; a counter fetches only the release it was ordered,
with its own credentials, and a cut download resumes with a range request.

Like an attacker: an auditor uploading, another counter's credentials, a withdrawn counter's
old password, a version not ordered, a forged Range header."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet_server.api.updates import served_bytes
from fleet_server.models import AuditEntry, CounterUpdateRecord, Device, Release, RolloutRecord
from fleet_server.security.enrolment import broker_password_hash
from tests.fleet_server.test_update_bundle import SUBJECT, _bundle, _certificate
from tests.support.webapp import WebApp, running_app

COUNTER, OTHER = "bussiere-galant", "chalus-mairie"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("ca"), SUBJECT)


@pytest.fixture
def app(db_url: str, tmp_path: Path, signer: tuple[Path, Path]) -> Iterator[WebApp]:
    with running_app(
        db_url,
        releases_dir=tmp_path / "releases",
        update_keyring=signer[1],
        public_url="https://flotte.example.fr",
        release_max_mb=1,
    ) as web:
        web.add_user("admin", "admin")
        web.add_user("lecteur", "auditor")
        yield web


def _upload(app: WebApp, body: bytes, user: str = "admin") -> Any:
    headers = {
        "Authorization": f"Bearer {app.token(user)}",
        "Content-Type": "application/octet-stream",
    }
    return app.client.post("/api/v1/releases", content=body, headers=headers)


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_an_administrator_s_upload_is_checked_and_kept(
    app: WebApp, tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    bundle = _bundle(tmp_path / "b", signer, version="1.5.0").read_bytes()
    answer = _upload(app, bundle)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["version"] == "1.5.0"
    assert body["uploaded_by"] == "admin"
    with app.sessions() as session:
        release = session.scalar(select(Release))
        assert release is not None
        assert Path(release.path).read_bytes() == bundle
        assert Path(release.path).parent == tmp_path / "releases"
        actions = session.scalars(select(AuditEntry.action)).all()
        assert "release.upload" in actions
    assert not list((tmp_path / "releases" / "incoming").iterdir())  # nothing left behind
    listed = app.client.get("/api/v1/releases", headers={"Authorization": f"Bearer {app.token()}"})
    assert [r["version"] for r in listed.json()] == ["1.5.0"]


def test_refusals_are_french_and_leave_nothing(
    app: WebApp, tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    intruder = _certificate(tmp_path / "intruder", "/CN=Intrus")
    forged = _bundle(tmp_path / "f", intruder, version="2.0.0").read_bytes()
    answer = _upload(app, forged)
    assert answer.status_code == 422
    assert "Signature refusée" in answer.json()["detail"]
    assert _upload(app, _bundle(tmp_path / "n", signer, version="1.5.0").read_bytes()).is_success
    older = _upload(app, _bundle(tmp_path / "o", signer, version="1.4.9").read_bytes())
    assert older.status_code == 422
    assert "n'est pas plus récente" in older.json()["detail"]
    other = _bundle(tmp_path / "c", signer, version="1.6.0", compatible="autre-chose")
    assert "pas pour les guichets" in _upload(app, other.read_bytes()).json()["detail"]
    too_big = _upload(app, b"\0" * (1024 * 1024 + 1))
    assert too_big.status_code == 413
    assert "taille permise" in too_big.json()["detail"]
    with app.sessions() as session:
        assert session.scalars(select(Release.version)).all() == ["1.5.0"]
    assert not list((tmp_path / "releases" / "incoming").iterdir())
    assert len(list((tmp_path / "releases").glob("*.raucb"))) == 1


def test_an_auditor_cannot_upload(app: WebApp, tmp_path: Path, signer: tuple[Path, Path]) -> None:
    bundle = _bundle(tmp_path / "b", signer).read_bytes()
    assert _upload(app, bundle, user="lecteur").status_code == 403
    anonymous = app.client.post(
        "/api/v1/releases", content=bundle, headers={"Content-Type": "application/octet-stream"}
    )
    assert anonymous.status_code == 401
    with app.sessions() as session:
        assert session.scalar(select(Release)) is None


def _ordered(app: WebApp, tmp_path: Path, signer: tuple[Path, Path]) -> tuple[bytes, str, str]:
    """A release ordered to COUNTER (not to OTHER); both enrolled. (bundle, both passwords)"""
    bundle = _bundle(tmp_path / "b", signer, version="1.5.0").read_bytes()
    assert _upload(app, bundle).status_code == 201
    passwords = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with app.sessions.begin() as session:
        for device_id, password in zip((COUNTER, OTHER), passwords, strict=True):
            session.add(
                Device(
                    id=device_id, state="online", site="Pays", name=device_id,
                    broker_password_hash=broker_password_hash(password), hardware_id="hw-1234",
                )
            )  # fmt: skip
        release = session.scalar(select(Release))
        assert release is not None
        rollout = RolloutRecord(
            release_id=release.id, state="running", wave_specs=[{"kind": "rest"}],
            waves=[[COUNTER, OTHER]], current_wave=0, wave_timeout_s=3600, margin_s=0,
            duration_s=0, created_at=now, created_by="admin",
        )  # fmt: skip
        session.add(rollout)
        session.flush()
        session.add_all(
            [
                CounterUpdateRecord(
                    rollout_id=rollout.id, device_id=COUNTER, release="1.5.0", wave=0,
                    ordered_at=now,
                ),
                CounterUpdateRecord(
                    rollout_id=rollout.id, device_id=OTHER, release="1.5.0", wave=0
                ),
            ]
        )  # fmt: skip
    return bundle, passwords[0], passwords[1]


URL = "/api/v1/bundles/1.5.0"


def test_the_ordered_counter_downloads_and_resumes(
    app: WebApp, tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    bundle, password, _other = _ordered(app, tmp_path, signer)
    whole = app.client.get(URL, headers=_basic(COUNTER, password))
    assert whole.status_code == 200
    assert whole.content == bundle
    assert whole.headers["accept-ranges"] == "bytes"
    cut = len(bundle) // 3  # the line dropped here: the rest is asked for
    rest = app.client.get(URL, headers=_basic(COUNTER, password) | {"Range": f"bytes={cut}-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {cut}-{len(bundle) - 1}/{len(bundle)}"
    assert whole.content[:cut] + rest.content == bundle
    beyond = app.client.get(
        URL, headers=_basic(COUNTER, password) | {"Range": f"bytes={len(bundle) + 10}-"}
    )
    assert beyond.status_code == 416
    forged = app.client.get(URL, headers=_basic(COUNTER, password) | {"Range": "bytes=zz-1"})
    assert forged.status_code in (200, 400)  # ignored or refused, never another file's bytes
    assert forged.status_code == 400 or forged.content == bundle
    # What the line carried, for the administrator: the whole file, then the rest after the
    # cut (the unsatisfiable range and the refused one carried nothing).
    metrics = app.client.get("/metrics", headers={"Authorization": f"Bearer {app.token()}"})
    line = re.search(r"^guichet_bundle_bytes_total (\S+)$", metrics.text, re.M)
    assert line is not None, metrics.text[:500]
    carried = float(line[1])
    expected = len(bundle) + (len(bundle) - cut) + (len(bundle) if forged.status_code == 200 else 0)
    assert carried == expected


def test_served_bytes_are_the_satisfiable_ranges() -> None:
    assert served_bytes(None, 1000) == 1000
    assert served_bytes("bytes=0-99", 1000) == 100
    assert served_bytes("bytes=900-", 1000) == 100
    assert served_bytes("bytes=-50", 1000) == 50
    assert served_bytes("bytes=0-9, 20-29", 1000) == 20
    assert served_bytes("bytes=990-2000", 1000) == 10
    assert served_bytes("bytes=2000-", 1000) == 0
    assert served_bytes("bytes=zz-1", 1000) == 0
    assert served_bytes("items=0-1", 1000) == 0
    assert served_bytes("bytes=-", 1000) == 0


def test_other_credentials_get_nothing(
    app: WebApp, tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    _bundle_bytes, password, other = _ordered(app, tmp_path, signer)
    # Another counter, with its own good credentials: it was not ordered this release.
    assert app.client.get(URL, headers=_basic(OTHER, other)).status_code == 404
    # This counter's id with another counter's password; a wrong password; nothing.
    assert app.client.get(URL, headers=_basic(COUNTER, other)).status_code == 401
    assert app.client.get(URL, headers=_basic(COUNTER, "x" * 43)).status_code == 401
    anonymous = app.client.get(URL)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    # A version it was not ordered, an administrator's API token, a path trick.
    assert (
        app.client.get("/api/v1/bundles/1.4.0", headers=_basic(COUNTER, password)).status_code
        == 404
    )
    bearer = {"Authorization": f"Bearer {app.token()}"}
    assert app.client.get(URL, headers=bearer).status_code == 401
    sneaky = app.client.get(
        "/api/v1/bundles/..%2F..%2Fetc%2Fpasswd", headers=_basic(COUNTER, password)
    )
    assert sneaky.status_code == 404
    # Withdrawn: its old password opens nothing.
    with app.sessions.begin() as session:
        device = session.get(Device, COUNTER)
        assert device is not None
        device.revoked_at, device.broker_password_hash = datetime.now(UTC), None
    assert app.client.get(URL, headers=_basic(COUNTER, password)).status_code == 401
