"""Remote support's screenshot and logs (issue 14, items 2 and 3), end to end: the running
fleet app, a real Mosquitto and a running counter whose screen is the real pygame renderer
(SDL's dummy driver). An administrator asks, the counter uploads over HTTP(S) with its own
call token and acks; the page shows the PNG, the logs with filters, and lets them be
downloaded. A screenshot is refused while the counter is in a call.

The logs hold no citizen's name: the counter's ring (at DEBUG) runs through the call's text
and documents sessions fed with a citizen's name — in lines, a document's name, malformed
messages —, then is uploaded; neither the file nor the page's search finds the name."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pygame
import pytest
from sqlalchemy import select

from appliance.app import Appliance
from appliance.call.caption import CaptionSession
from appliance.call.documents import DocumentSession, DocumentSettings
from appliance.config import TlsSection, parse_config
from appliance.documents.pdf import MB, Limits
from appliance.fleet.tls import https_context
from appliance.fleet.upload import Uploader
from appliance.hw.ports.logs import RingLogs
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from appliance.support_files import SupportFiles
from fleet_server.models import AuditEntry, CommandRecord, SupportUpload
from fleet_server.mqtt import uploads
from guichet import caption as cap
from guichet import contract
from guichet import documents as doc
from guichet.contract import utcnow
from tests.fleet_server.test_remote_actions import (
    COUNTER,
    SITE,
    WAIT_S,
    act,
    admin_client,
    fleet,
    online,
    settled,
)
from tests.support.documents import pdf_of
from tests.support.live_server import LiveApp, live_app, receive, send
from tests.support.mosquitto import Broker

CITIZEN = "Zoé Quelennec-Tréguier"  # a test citizen's name: never in a log line
SCREEN_SIZE = (1280, 720)


def counter_config(
    tmp_path: Path, broker: Broker, live: LiveApp, token: str, *, calls: bool = True
) -> Any:
    call = (
        f'[call]\nserver_url = "{live.ws_url}/ws/counter"\ntoken = "{token}"\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
    )
    return parse_config(
        f'[device]\nid = "{COUNTER}"\nsite = "{SITE}"\ndata_dir = "{tmp_path / "counter"}"\n\n'
        f'[fleet]\nmqtt_url = "{broker.url}"\nkeepalive_s = 5\ntelemetry_interval_s = 30\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
        + (call if calls else "")
        + '[hardware]\nsystem = "simulated"\nscreen = "pygame"\nscreen_driver = "dummy"\n'
        f"screen_size = [{SCREEN_SIZE[0]}, {SCREEN_SIZE[1]}]\n"
        'camera = "test_pattern"\naudio_in = "test_tone"\naudio_out = "none"\n'
    )


@asynccontextmanager
async def running(config: Any) -> AsyncIterator[Appliance]:
    appliance = Appliance(config)
    task = asyncio.create_task(appliance.run())
    await asyncio.wait_for(appliance.wait_ready(), 10)
    try:
        yield appliance
    finally:
        await asyncio.wait_for(appliance.stop(), 10)
        await asyncio.wait_for(task, 10)


def upload_of(live: LiveApp, request_id: str) -> SupportUpload | None:
    with live.sessions() as session:
        return session.get(SupportUpload, uuid.UUID(request_id))


async def test_a_screenshot_is_a_png_of_the_real_screen_shown_on_the_page(
    broker: Broker, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    async with fleet(broker, db_url) as live:
        token = live.add_counter(COUNTER, SITE, "Mairie", service="caf")
        async with running(counter_config(tmp_path, broker, live, token)):
            await online(live)
            client, csrf = await admin_client(live)
            async with aclosing(client):
                sent = await act(client, csrf, "screenshot")
                assert sent.status_code == 202, sent.text
                request_id = sent.json()["request_id"]
                answered = await settled(client, request_id)
                assert answered["state"] == "done", answered
                assert answered["detail"].startswith("capture d'écran envoyée (")
                page = (await client.get(f"/devices/{COUNTER}")).text
                image_url = f"/devices/{COUNTER}/screenshots/{request_id}.png"
                assert f'src="{image_url}"' in page
                assert "alt=\"Ce que l'écran du guichet affichait le " in page
                png = await client.get(image_url)
                assert png.status_code == 200
                assert png.headers["content-type"] == "image/png"
                image = pygame.image.load(io.BytesIO(png.content), "screen.png")
                assert image.get_size() == SCREEN_SIZE
                stored = upload_of(live, request_id)
                assert stored is not None
                assert stored.body == png.content
                assert stored.expires_at - stored.received_at == timedelta(hours=7 * 24)
        with live.sessions() as session:
            audited = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert audited[-3:] == ["command.send", "support.upload", "support.view"]


async def test_no_screenshot_while_the_counter_is_in_a_call(
    broker: Broker, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses first (the call on its side); the counter's own refusal, from its
    call's state and its renderer's, is in tests/appliance/test_support_files.py."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    async with fleet(broker, db_url) as live:
        token = live.add_counter(COUNTER, SITE, "Mairie")
        live.add_user("alice")  # an agent of the counter's service
        agent = await live.login("alice")
        client, csrf = await admin_client(live)
        try:
            config = counter_config(tmp_path, broker, live, token, calls=False)
            async with running(config), live.counter_socket(token) as ws:
                await online(live)
                async with live.agent_socket(agent):
                    await receive(ws, "welcome")
                    await send(ws, {"type": "call_request", "call_id": str(uuid.uuid4())})
                    await receive(ws, "call_queued")
                    refused = await act(client, csrf, "screenshot")
                await send(ws, {"type": "hangup"})
        finally:
            await client.aclose()
            await agent.aclose()
        with live.sessions() as session:
            names = session.scalars(select(CommandRecord.name)).all()
            kept = session.scalars(select(SupportUpload)).all()
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "« Voir l'écran du guichet » refusé : un appel est en cours sur ce guichet : pas de"
        " capture d'écran pendant un appel."
    )
    assert (names, kept) == ([], [])


def fetch_logs_row(live: LiveApp, minutes: int = 30) -> uuid.UUID:
    """A pending ``fetch_logs`` action for the counter, as ``prepare_action`` records it."""
    request_id = uuid.uuid4()
    with live.sessions.begin() as session:
        session.add(
            CommandRecord(
                request_id=request_id, device_id=COUNTER, name="fetch_logs",
                args={"minutes": minutes}, sent_at=utcnow(),
                expires_at=utcnow() + timedelta(minutes=2), actor="admin",
            )
        )  # fmt: skip
    return request_id


async def a_citizen_s_call(tmp_path: Path) -> None:
    """What a call carries of a citizen, through the counter's real sessions."""

    class Channel:
        def __init__(self) -> None:
            self.sent: list[doc.CounterToBrowser] = []
            self.changed = asyncio.Event()

        def send(self, data: str | bytes) -> None:
            if isinstance(data, str):
                self.sent.append(doc.parse_to_browser(data))
                self.changed.set()

        async def writable(self) -> None:
            await asyncio.sleep(0)

        async def wait_scan_done(self) -> None:
            async with asyncio.timeout(WAIT_S):
                while not any(isinstance(m, doc.Done) and m.id == "s1" for m in self.sent):
                    self.changed.clear()
                    await self.changed.wait()

    class Sink:
        def send(self, data: str) -> None:
            pass

    captions = CaptionSession(Sink(), lambda lines: None)
    captions.opened()
    captions.received(cap.dump(cap.Line(id=1, text=f"Bonjour {CITIZEN}")))
    captions.received('{"type": "line", "id": 2, "text": "' + CITIZEN * 20 + '"}')  # too long
    captions.received('{"type": "nonsense", "name": "' + CITIZEN + '"}')
    captions.close()
    settings = DocumentSettings(
        scanner=SimulatedScanner(),
        printer=SimulatedPrinter(),
        limits=Limits(max_bytes=20 * MB, max_pages=50),
        private_dir=tmp_path / "private",
        job_timeout_s=WAIT_S,
    )
    hints: list[str | None] = []
    channel = Channel()
    session = DocumentSession(channel, settings, hints.append)  # type: ignore[arg-type]
    try:
        data = pdf_of(1)
        sha = doc.sha256_hex(data)
        start = doc.PrintStart(
            id="p1", name=f"{CITIZEN} attestation.pdf", size=len(data), sha256=sha
        )
        session.received(doc.dump(start))
        for piece in doc.chunks(data):
            session.received(bytes(piece))
        session.received(doc.dump(doc.Done(id="p1", sha256=sha)))
        session.received('{"type": "print_start", "id": "' + CITIZEN + '", "name": 3}')
        session.received(doc.dump(doc.ScanRequest(id="s1", resolution=150)))
        await channel.wait_scan_done()
    finally:
        await session.close()


async def test_logs_are_uploaded_shown_filtered_downloaded_and_hold_no_citizen_name(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as a counter logs (guichet.logs.setup_logging)…
    caplog.set_level(logging.DEBUG, logger="appliance")  # … and all its own debug lines
    async with live_app(db_url) as live:
        token = live.add_counter(COUNTER, SITE, "Mairie")
        live.add_user("admin", role="admin", service=None)
        ring = RingLogs().install()
        try:
            logging.getLogger("appliance.app").info("counter started", extra={"version": "t"})
            await a_citizen_s_call(tmp_path)
        finally:
            ring.uninstall()
        uploader = Uploader(live.url, COUNTER, token, https_context(TlsSection()))
        support = SupportFiles(screen=None, logs=ring, uploader=uploader, busy=lambda: None)
        request_id = fetch_logs_row(live)
        command = contract.Command(
            request_id=request_id, at=utcnow(), name="fetch_logs", args={"minutes": 30}
        )
        said = await support.fetch_logs(command)
        assert said.endswith("ligne(s) de journal des 30 dernières minutes envoyées"), said
        stored = upload_of(live, str(request_id))
        assert stored is not None
        text = gzip.decompress(stored.body).decode()
        loggers = {line.logger for line in uploads.log_lines(stored.body)}
        assert {"appliance.app", "appliance.call.caption", "appliance.call.documents"} <= loggers
        for part in (CITIZEN, *CITIZEN.split(), "Quelennec", "Tr\\u00e9guier"):
            assert part.casefold() not in text.casefold(), f"{part!r} in the counter's logs"

        client = await live.login("admin")
        async with aclosing(client):
            page_url = f"/devices/{COUNTER}/logs/{request_id}"
            page = await client.get(page_url)
            assert page.status_code == 200
            assert "counter started" in page.text
            assert CITIZEN not in page.text
            searched = await client.get(page_url, params={"q": "Quelennec"})
            assert "Aucune ligne ne correspond à ces critères." in searched.text
            warnings = await client.get(page_url, params={"level": "warning"})
            assert 'data-level="info"' not in warnings.text
            assert 'data-level="warning"' in warnings.text
            only = await client.get(page_url, params={"logger": "appliance.app"})
            assert "counter started" in only.text
            assert "appliance.call.caption" not in only.text.split("<tbody>")[1]
            download = await client.get(page_url + ".jsonl.gz")
            assert download.status_code == 200
            assert download.content == stored.body
            assert "attachment" in download.headers["content-disposition"]
