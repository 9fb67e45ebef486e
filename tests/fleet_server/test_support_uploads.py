"""The upload endpoint of remote support's files, like an attacker (issue 14, items 2 and 3):
the real app served by uvicorn, on SQLite and PostgreSQL. Only the counter the action was
sent to, with its own call token, for a pending action that asks for a file, once, of its
type and size; everything else is refused — and audited when a counter's token came with
it. Files are purged past their retention; a page then finds nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, CommandRecord, Device, SupportUpload
from fleet_server.mqtt import uploads
from guichet.actions import UPLOAD_MAX_BYTES
from guichet.contract import utcnow
from tests.support.live_server import LiveApp, live_app

A, B = "monts-de-chalus", "vallee-de-la-gorre"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LOGS = gzip.compress(b'{"ts": "t", "level": "info", "logger": "appliance.app", "msg": "ok"}\n')


@pytest.fixture
async def live(db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(db_url) as app:
        yield app


def action(
    live: LiveApp, device_id: str, name: str = "screenshot", *, expires_in_s: float = 60
) -> uuid.UUID:
    request_id = uuid.uuid4()
    with live.sessions.begin() as session:
        session.add(
            CommandRecord(
                request_id=request_id, device_id=device_id, name=name, args={},
                sent_at=utcnow(), expires_at=utcnow() + timedelta(seconds=expires_in_s),
            )
        )  # fmt: skip
    return request_id


async def put(
    live: LiveApp,
    device_id: str,
    request_id: uuid.UUID | str,
    token: str | None,
    body: bytes = PNG,
    media_type: str = "image/png",
) -> httpx.Response:
    headers = {"Content-Type": media_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=live.url) as client:
        return await client.put(
            f"/api/v1/devices/{device_id}/uploads/{request_id}", content=body, headers=headers
        )


def kept(live: LiveApp) -> list[uuid.UUID]:
    with live.sessions() as session:
        return list(session.scalars(select(SupportUpload.request_id)))


def refusals(live: LiveApp) -> list[str]:
    with live.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.action == "support.upload_refused")
        return [e.detail["why"] for e in session.scalars(query.order_by(AuditEntry.id))]


async def test_only_the_addressed_counter_with_its_own_token_uploads_once(live: LiveApp) -> None:
    token_a = live.add_counter(A, "Site A", "Mairie A")
    token_b = live.add_counter(B, "Site B", "Mairie B")
    shot = action(live, A)
    assert (await put(live, A, shot, None)).status_code == 401
    assert (await put(live, A, shot, "gpc_" + "x" * 43)).status_code == 401
    assert (await put(live, A, shot, token_b)).status_code == 403  # B's token, A's path
    assert (await put(live, B, shot, token_b)).status_code == 404  # B's path, A's action
    assert (await put(live, A, uuid.uuid4(), token_a)).status_code == 404  # forged id
    assert (await put(live, A, "not-a-uuid", token_a)).status_code == 404
    assert kept(live) == []
    first = await put(live, A, shot, token_a)
    assert first.status_code == 201, first.text
    assert first.json() == {"request_id": str(shot), "bytes": len(PNG)}
    replay = await put(live, A, shot, token_a)
    assert replay.status_code == 409
    assert replay.json()["detail"] == "Fichier déjà reçu pour cette action."
    assert kept(live) == [shot]
    assert refusals(live) == [
        "jeton d'un autre guichet",
        "aucune action de ce type n'attend ce fichier",
        "aucune action de ce type n'attend ce fichier",
        "action inconnue",
        "fichier déjà reçu pour cette action",
    ]


async def test_an_answered_expired_or_other_action_takes_no_file(live: LiveApp) -> None:
    token = live.add_counter(A, "Site A", "Mairie A")
    selftest = action(live, A, "selftest")
    expired = action(live, A, expires_in_s=-1)
    answered = action(live, A)
    with live.sessions.begin() as session:
        record = session.get(CommandRecord, answered)
        assert record is not None
        record.acked_at, record.ok = utcnow(), True
    assert (await put(live, A, selftest, token)).status_code == 404
    assert (await put(live, A, expired, token)).status_code == 409
    assert (await put(live, A, answered, token)).status_code == 409
    assert kept(live) == []


async def test_the_type_and_the_size_are_checked(live: LiveApp) -> None:
    token = live.add_counter(A, "Site A", "Mairie A")
    shot, logs = action(live, A), action(live, A, "fetch_logs")
    assert (await put(live, A, shot, token, LOGS, "application/gzip")).status_code == 415
    assert (await put(live, A, shot, token, b"GIF89a" + b"\x00" * 10)).status_code == 422
    assert (await put(live, A, logs, token, b"not gzip", "application/gzip")).status_code == 422
    bomb = gzip.compress(b"\n" * (uploads.LOGS_MAX_INFLATED + 1024))
    assert len(bomb) < UPLOAD_MAX_BYTES
    assert (await put(live, A, logs, token, bomb, "application/gzip")).status_code == 422
    big = PNG + b"\x00" * UPLOAD_MAX_BYTES
    assert (await put(live, A, shot, token, big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(UPLOAD_MAX_BYTES // 65536 + 2):
            yield PNG + b"\x00" * (65536 - len(PNG))

    async with httpx.AsyncClient(base_url=live.url) as client:
        streamed = await client.put(
            f"/api/v1/devices/{A}/uploads/{shot}",
            content=chunks(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        )
    assert streamed.status_code == 413
    assert kept(live) == []
    assert (await put(live, A, logs, token, LOGS, "application/gzip")).status_code == 201
    assert (await put(live, A, shot, token)).status_code == 201


async def test_a_withdrawn_counter_s_token_uploads_nothing(live: LiveApp) -> None:
    token = live.add_counter(A, "Site A", "Mairie A")
    shot = action(live, A)
    with live.sessions.begin() as session:
        device = session.get(Device, A)
        assert device is not None
        device.revoked_at = utcnow()
    assert (await put(live, A, shot, token)).status_code == 401
    assert kept(live) == []


async def test_files_are_purged_past_their_retention_and_pages_say_so(live: LiveApp) -> None:
    token = live.add_counter(A, "Site A", "Mairie A")
    live.add_user("admin", role="admin", service=None)
    logs = action(live, A, "fetch_logs")
    assert (await put(live, A, logs, token, LOGS, "application/gzip")).status_code == 201
    client = await live.login("admin")
    try:
        page = await client.get(f"/devices/{A}/logs/{logs}")
        assert page.status_code == 200
        assert "appliance.app" in page.text
        assert (await client.get(f"/devices/{B}/logs/{logs}")).status_code == 404
        assert (await client.get(f"/devices/{A}/screenshots/{logs}.png")).status_code == 404
        assert uploads.purge_expired(live.sessions, utcnow()) == 0
        later = utcnow() + timedelta(hours=live.ctx.settings.support_retention_h, seconds=1)
        assert uploads.purge_expired(live.sessions, later) == 1
        assert (await client.get(f"/devices/{A}/logs/{logs}")).status_code == 404
        assert (await client.get(f"/devices/{A}/logs/{logs}.jsonl.gz")).status_code == 404
    finally:
        await client.aclose()
    assert kept(live) == []


def test_log_lines_are_read_and_filtered() -> None:
    lines = [
        {"ts": "1", "level": "debug", "logger": "appliance.call.agent", "msg": "tick"},
        {"ts": "2", "level": "info", "logger": "appliance.app", "msg": "counter started"},
        {"ts": "3", "level": "warning", "logger": "appliance.fleet.link", "msg": "link lost",
         "error": "Connection refused"},
        {"ts": "4", "level": "error", "logger": "appliance.app", "msg": "reboot failed"},
    ]  # fmt: skip
    body = gzip.compress(("\n".join(json.dumps(x) for x in lines) + "\nnot json\n").encode())
    read = uploads.log_lines(body)
    assert [line.msg for line in read] == [
        "tick", "counter started", "link lost", "reboot failed", "not json",
    ]  # fmt: skip
    assert read[2].extra == {"error": "Connection refused"}
    pick = uploads.filter_lines
    assert [x.ts for x in pick(read, level="warning")] == ["3", "4"]
    assert [x.ts for x in pick(read, logger="appliance.app")] == ["2", "4"]
    assert [x.ts for x in pick(read, text="REFUSED")] == ["3"]  # the extras too, any case
