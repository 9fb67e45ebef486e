"""Enrolment that waits as long as it takes, against the real fleet app over real HTTP
(uvicorn on loopback, a fresh SQLite database): the pending request survives a restart of
the agent, readiness reaches a real NOTIFY_SOCKET before enrolment ends, the screen and the
admin page show the same short code, and a spent token leaves its French message in
GUICHET-ERREUR.txt (the agent's copy, then the card's)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from appliance import enrol
from appliance.app import Appliance
from appliance.config import ApplianceConfig
from appliance.enrol_wait import ERROR_FILE
from appliance.firstboot import Provisioner
from appliance.hw.ports import LightPattern, ScreenState
from appliance.hw.ports.controls import SimulatedLight
from appliance.hw.ports.screen import SimulatedScreen
from appliance.hw.screen_pygame import texts
from fleet_server.models import EnrolmentRequest
from fleet_server.security import enrolment
from tests.support.databases import fresh_database
from tests.support.live_server import CSRF_RE, LiveApp, live_app
from tests.support.mosquitto import free_port

WAIT_S = 10.0
POLL_S = 0.05
CODE_RE = re.compile(r"<code data-enrolment-code>([A-Z0-9]{6})</code>")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveApp]:
    with fresh_database("sqlite", tmp_path) as url:
        async with live_app(url) as app:
            app.add_user("admin", "admin", None)
            yield app


def token(server: LiveApp, *, uses: int = 1) -> str:
    with server.sessions.begin() as session:
        return enrolment.create_token(
            session, site="Monts de Châlus", valid_hours=1, max_uses=uses,
            pre_approved=False, actor="test",
        )  # fmt: skip


def counter_config(server: LiveApp, data_dir: Path, enrolment_token: str) -> ApplianceConfig:
    return ApplianceConfig.model_validate(
        {
            "device": {"id": "chalus-1", "site": "Mairie de Châlus", "name": "Guichet 1",
                       "data_dir": data_dir},
            "fleet": {
                "mqtt_url": f"mqtt://127.0.0.1:{free_port()}",  # nobody: serving is not tested
                "enrolment_url": server.url,
                "enrolment_token": enrolment_token,
            },
        }
    )  # fmt: skip


@asynccontextmanager
async def agent(config: ApplianceConfig) -> AsyncIterator[Appliance]:
    """One agent instance running as under systemd (``Appliance.run``) until the block ends."""
    appliance = Appliance(config, enrol_poll_s=POLL_S)
    task = asyncio.create_task(appliance.run())
    try:
        await until(lambda: appliance._hardware is not None or task.done(), "hardware built")
        yield appliance
    finally:
        await appliance.stop()
        await task


async def until(condition: object, what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    assert condition(), what  # type: ignore[operator]


def screen_of(appliance: Appliance) -> SimulatedScreen:
    screen = appliance.hardware.screen
    assert isinstance(screen, SimulatedScreen)
    return screen


def pending_requests(server: LiveApp) -> int:
    with server.sessions() as session:
        return session.scalar(select(func.count()).select_from(EnrolmentRequest)) or 0


async def approve_on_the_admin_page(server: LiveApp) -> str:
    """Approve the one pending request as an administrator would; returns the code shown."""
    client = await server.login("admin")
    try:
        page = (await client.get("/admin/enrolment")).text
        codes = CODE_RE.findall(page)
        request = re.search(r'data-request="(\d+)"', page)
        csrf = CSRF_RE.search(page)
        assert len(codes) == 1, page
        assert request
        assert csrf
        answer = await client.post(
            f"/admin/enrolment/requests/{request.group(1)}",
            data={"decision": "approve", "csrf_token": csrf.group(1)},
        )
        assert answer.status_code == 303
        return str(codes[0])
    finally:
        await client.aclose()


async def test_a_pending_request_survives_a_restart_and_is_collected_after_approval(
    server: LiveApp, tmp_path: Path
) -> None:
    config = counter_config(server, tmp_path / "etat", token(server))
    async with agent(config) as first:
        screen = screen_of(first)
        await until(lambda: screen.info.get("code"), "the code is on the screen")
        assert screen.state is ScreenState.ENROLMENT
        code = screen.info["code"]
        assert screen.info["counter"] == "Guichet 1 — Mairie de Châlus"
        light = first.hardware.light
        assert isinstance(light, SimulatedLight)
        assert light.pattern is LightPattern.WAITING
    # Stopped before any approval, as systemd or a power cut would: the request is on disk.
    stored = enrol.load_pending(config)
    assert stored is not None
    assert stored.code == code
    assert stat.S_IMODE(enrol.pending_path(config).stat().st_mode) == 0o600
    assert enrol.load_credentials(config) is None

    shown = await approve_on_the_admin_page(server)  # while no agent runs
    assert shown == code, "the admin page and the counter's screen show the same code"

    async with agent(config) as second:  # a new instance: reuses the stored poll secret
        await asyncio.wait_for(second.wait_ready(), WAIT_S)
        assert second.config.fleet.password is not None
        assert second.config.call.token is not None
    assert pending_requests(server) == 1, "the token was not spent on a second request"
    assert enrol.load_credentials(config) is not None
    assert enrol.load_pending(config) is None


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A real sd_notify socket (abstract namespace), as systemd gives a Type=notify unit."""
    name = f"@guichet-test-{os.getpid()}-{id(monkeypatch)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name[1:])
    server.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield server
    finally:
        server.close()


async def test_readiness_and_the_watchdog_come_before_enrolment_ends(
    server: LiveApp, tmp_path: Path, notify_socket: socket.socket
) -> None:
    config = counter_config(server, tmp_path / "etat", token(server))
    loop = asyncio.get_running_loop()
    async with agent(config) as appliance:
        said = [await asyncio.wait_for(loop.sock_recv(notify_socket, 64), WAIT_S)]
        while said.count(b"WATCHDOG=1") < 3:  # fed while it waits for the Pays
            said.append(await asyncio.wait_for(loop.sock_recv(notify_socket, 64), WAIT_S))
        assert said[0] == b"READY=1"
        assert enrol.load_credentials(config) is None, "not enrolled yet"
        assert screen_of(appliance).state is ScreenState.ENROLMENT
        assert not appliance._ready.is_set()  # not serving: waiting for approval


async def test_a_spent_token_says_so_in_french_on_the_screen_and_the_card(
    server: LiveApp, tmp_path: Path
) -> None:
    spent = token(server)
    other = counter_config(server, tmp_path / "autre", spent).model_copy(deep=True)
    other = other.model_copy(update={"device": other.device.model_copy(update={"id": "chalus-2"})})
    await enrol._pending_for(other, spent, lambda _status: None)  # its one use
    data = tmp_path / "donnees"
    config = counter_config(server, data / "etat", spent)
    async with agent(config) as appliance:
        screen = screen_of(appliance)
        await until(lambda: screen.state is ScreenState.ENROLMENT_REFUSED, "refused")
        assert "jeton d'enrôlement invalide, expiré ou épuisé" in screen.info["reason"]
        error = data / "etat" / ERROR_FILE
        await until(error.exists, "the agent wrote its error file")
    text = error.read_bytes().decode()
    assert "LE GUICHET NE PEUT PAS ÊTRE MIS EN SERVICE" in text
    assert "a refusé l'enrôlement de ce guichet" in text
    assert "[flotte] jeton" in text
    assert "\r\n" in text

    # guichet-erreur-carte.service's job: the same file onto the card.
    boot = tmp_path / "boot"
    boot.mkdir()
    provisioner = Provisioner(boot=boot, data=data, owner=None, screens=[], remount_boot=False)
    assert provisioner.publish_agent_error() == 0
    assert (boot / ERROR_FILE).read_bytes().decode() == text


async def test_a_new_token_drops_the_stored_request_and_an_unknown_one_is_replaced(
    server: LiveApp, tmp_path: Path
) -> None:
    first = counter_config(server, tmp_path / "etat", token(server))
    statuses: list[enrol.EnrolmentStatus] = []
    old = await enrol._pending_for(first, first.fleet.enrolment_token or "", statuses.append)

    second_token = token(server, uses=2)
    config = first.model_copy(
        update={"fleet": first.fleet.model_copy(update={"enrolment_token": second_token})}
    )
    waiting = asyncio.create_task(
        enrol.enrol(config, poll_interval_s=POLL_S, report=statuses.append)
    )
    await until(lambda: statuses and statuses[-1].step == "pending", "pending")
    new = enrol.load_pending(config)
    assert new is not None
    assert new.poll_secret != old.poll_secret
    assert new.token_sha256 != old.token_sha256

    # The server forgets the request (as an expiry does): the counter files a new one.
    with server.sessions.begin() as session:
        session.execute(delete(EnrolmentRequest).where(EnrolmentRequest.device_id == "chalus-1"))
    await until(
        lambda: (p := enrol.load_pending(config)) is not None and p.code != new.code, "re-asked"
    )
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert texts.ENROLMENT_WAITING in texts.enrolment_summary("G", new.code)
