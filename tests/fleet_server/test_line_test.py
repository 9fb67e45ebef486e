"""Remote support's test call end to end (issue 14): the running fleet app with a real
Mosquitto, and a running counter (test-pattern camera, test tone, simulated system) with
its real call agent. An administrator's « Appel de test » goes out as ``cmd``; the counter
calls the server's automatic answerer over its signalling link (real aiortc on both ends);
the answerer measures the line, stores the figures on the action's row, and the counter's
ack ends the action. Refused while the counter is offline or in a call; like an attacker, a
test-call request the server did not ask for (no action, another action's id, a replay)
costs no media and stores nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from appliance.app import Appliance
from appliance.call.loopback import disable_loopback_candidates, enable_if_requested
from appliance.call.machine import Phase
from appliance.config import parse_config
from appliance.hw.ports.controls import SimulatedButton
from fleet_server.models import AuditEntry, CommandRecord, Device
from tests.support.actions_api import action_settled
from tests.support.call_harness import wait_for
from tests.support.coturn import Coturn
from tests.support.live_server import LiveApp, live_app, receive, send
from tests.support.mosquitto import Broker
from tests.support.webapp import CSRF_RE

pytestmark = pytest.mark.slow  # real aiortc calls, several seconds each

COUNTER, SITE = "monts-de-chalus", "Monts de Châlus"
WAIT_S = 30.0
MEASURE_S = 2.0  # the answerer's window, short for tests
FIGURES = {"rtt_ms", "up_kbps", "down_kbps", "up_loss_pct", "down_loss_pct", "measured_s"}


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Both peers are on this machine: ICE may use the loopback (put back afterwards)."""
    was_on = enable_if_requested()
    yield
    if not was_on:
        disable_loopback_candidates()


def counter_toml(tmp_path: Path, broker: Broker, live: LiveApp, token: str) -> str:
    return f"""
[device]
id = "{COUNTER}"
site = "{SITE}"
data_dir = "{tmp_path / "counter"}"

[fleet]
mqtt_url = "{broker.url}"
keepalive_s = 5
telemetry_interval_s = 30
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[call]
server_url = "{live.ws_url}/ws/counter"
token = "{token}"
reconnect_min_s = 0.2
reconnect_max_s = 1.0
ice_loopback = true

[questionnaire]
enabled = false

[hardware]
system = "simulated"
screen = "simulated"
camera = "test_pattern"
camera_encoding = "raw"
camera_size = [640, 360]
camera_fps = 15
audio_in = "test_tone"
audio_out = "none"
"""


@asynccontextmanager
async def fleet(
    broker: Broker, db_url: str, measure_s: float = MEASURE_S, **settings: object
) -> AsyncIterator[tuple[LiveApp, str]]:
    async with live_app(
        db_url,
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
        test_call_measure_s=measure_s,
        **settings,
    ) as live:
        assert await asyncio.to_thread(live.ctx.ingest.wait_connected, WAIT_S)  # type: ignore[union-attr]
        live.add_user("admin", role="admin", service=None)
        token = live.add_counter(COUNTER, SITE, "Mairie")
        yield live, token


@asynccontextmanager
async def counter(
    tmp_path: Path, broker: Broker, live: LiveApp, token: str
) -> AsyncIterator[Appliance]:
    appliance = Appliance(parse_config(counter_toml(tmp_path, broker, live, token)))
    task = asyncio.create_task(appliance.run())
    await asyncio.wait_for(appliance.wait_ready(), 10)
    try:
        await wait_for(lambda: state_of(live) == "online", "online", WAIT_S)
        agent = appliance.call_agent
        assert agent is not None
        await wait_for(lambda: agent.machine.phase is Phase.IDLE, "counter idle", WAIT_S)
        yield appliance
    finally:
        await asyncio.wait_for(appliance.stop(), 10)
        await asyncio.wait_for(task, 10)


def state_of(live: LiveApp) -> str | None:
    with live.sessions() as session:
        device = session.get(Device, COUNTER)
        return device.state if device is not None else None


async def admin_client(live: LiveApp) -> tuple[httpx.AsyncClient, str]:
    client = await live.login("admin")
    match = CSRF_RE.search((await client.get("/")).text)
    assert match
    return client, match.group(1)


async def api_action(client: httpx.AsyncClient, csrf: str, action: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/devices/{COUNTER}/actions",
        json={"action": action},
        headers={"X-CSRF-Token": csrf},
    )


settled = partial(action_settled, device_id=COUNTER, timeout_s=90)


async def test_a_test_call_measures_the_line_and_stores_its_figures(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    async with (
        fleet(broker, db_url) as (live, token),
        counter(tmp_path, broker, live, token) as appliance,
    ):
        agent = appliance.call_agent
        assert agent is not None
        phases: list[Phase] = []
        client, csrf = await admin_client(live)
        try:
            sent = await api_action(client, csrf, "test_call")
            assert sent.status_code == 202, sent.text
            assert sent.json()["label"] == "Appel de test"
            await wait_for(lambda: agent.line_test is not None, "test call started", WAIT_S)
            while agent.line_test is not None:  # the citizen's side never moves meanwhile
                phases.append(agent.machine.phase)
                await asyncio.sleep(0.05)
            done = await settled(client, sent.json()["request_id"])
            page = (await client.get(f"/devices/{COUNTER}/actions")).text
            device_page = (await client.get(f"/devices/{COUNTER}")).text
        finally:
            await client.aclose()
        async with live.counter_socket(token) as ws:  # the same request again: a replay
            await receive(ws, "welcome")
            replay = {"call_id": str(uuid.uuid4()), "request_id": done["request_id"]}
            await send(ws, {"type": "test_call_request", **replay})
            replayed = await receive(ws, "test_call_result")
        assert agent.peer is None  # no citizen call was made
        with live.sessions() as session:
            record = session.get(CommandRecord, uuid.UUID(done["request_id"]))
            assert record is not None
            stored = record.measurements
            audited = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "command.send")
            ).all()
            commands = [e.detail["command"] for e in audited]
    assert done["state"] == "done", done
    assert done["detail"].startswith("appel de test réussi : Aller-retour : ")
    figures = done["measurements"]
    assert set(figures) == FIGURES
    assert figures["rtt_ms"] > 0
    assert figures["up_kbps"] > 0  # the counter's camera and microphone reached the server
    assert figures["down_kbps"] > 0  # the answerer's known stream went back
    assert 0 <= figures["up_loss_pct"] <= 100
    assert figures["down_loss_pct"] is not None  # the counter's receiver reports came
    assert 0 <= figures["down_loss_pct"] <= 100
    assert figures["measured_s"] >= MEASURE_S
    assert stored == figures
    assert set(phases) == {Phase.IDLE}
    assert "Mesuré par le serveur" in page
    assert "Débit montant" in page
    assert 'name="action" value="test_call"' in device_page
    assert commands == ["test_call"]
    assert replayed["ok"] is False
    assert replayed["detail"] == "refusé : cet appel de test a déjà eu lieu"


async def test_a_test_call_the_server_did_not_ask_for_is_refused(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """A counter's call token alone does not buy a test call: the request must name a
    pending ``test_call`` of this counter; a selftest's id, an unknown id and a replay of a
    claimed one are refused, nothing is measured or stored."""
    async with fleet(broker, db_url) as (live, token):
        client, csrf = await admin_client(live)
        try:
            async with counter(tmp_path, broker, live, token):
                selftest = await api_action(client, csrf, "selftest")
                assert selftest.status_code == 202, selftest.text
                await settled(client, selftest.json()["request_id"])
            async with live.counter_socket(token) as ws:
                await receive(ws, "welcome")
                answers = []
                for request_id in (uuid.uuid4(), uuid.UUID(selftest.json()["request_id"])):
                    call_id = uuid.uuid4()
                    await send(
                        ws,
                        {
                            "type": "test_call_request",
                            "call_id": str(call_id),
                            "request_id": str(request_id),
                        },
                    )
                    answers.append(await receive(ws, "test_call_result"))
                assert not live.ctx.calls.test_calls.testing(COUNTER)
        finally:
            await client.aclose()
        with live.sessions() as session:
            stored = session.scalars(
                select(CommandRecord.measurements).where(CommandRecord.measurements.is_not(None))
            ).all()
    assert [a["ok"] for a in answers] == [False, False]
    assert all("aucun appel de test demandé" in a["detail"] for a in answers)
    assert stored == []


async def test_a_test_call_is_refused_offline_and_in_a_call(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    async with fleet(broker, db_url) as (live, token):
        live.add_user("alice")  # an agent of the counter's service
        agent = await live.login("alice")
        client, csrf = await admin_client(live)
        try:
            offline = await api_action(client, csrf, "test_call")
            # A citizen's call queued from this counter: the server refuses the test.
            async with (
                counter(tmp_path, broker, live, token) as appliance,
                live.agent_socket(agent),
            ):
                button = appliance.hardware.button
                assert isinstance(button, SimulatedButton)
                button.press()
                button.release(0.1)
                await wait_for(lambda: live.ctx.calls.in_call(COUNTER), "queued", WAIT_S)
                in_call = await api_action(client, csrf, "test_call")
        finally:
            await client.aclose()
            await agent.aclose()
        with live.sessions() as session:
            names = session.scalars(select(CommandRecord.name)).all()
    assert offline.status_code == 409
    assert "n'est pas en ligne" in offline.json()["detail"]
    assert in_call.status_code == 409
    assert in_call.json()["detail"].startswith("Un appel est en cours sur ce guichet")
    assert names == []


async def test_a_citizen_pressing_the_button_ends_the_test_call_and_gets_the_counter(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """The answerer would measure for 30 s; a press during the test call hangs it up at
    once on both ends: the action fails saying why, nothing is stored, the citizen's call
    goes on."""
    async with (
        fleet(broker, db_url, measure_s=30.0) as (live, token),
        counter(tmp_path, broker, live, token) as appliance,
    ):
        agent = appliance.call_agent
        assert agent is not None
        client, csrf = await admin_client(live)
        try:
            sent = await api_action(client, csrf, "test_call")
            assert sent.status_code == 202, sent.text
            await wait_for(
                lambda: live.ctx.calls.test_calls.testing(COUNTER), "answerer started", WAIT_S
            )
            button = appliance.hardware.button
            assert isinstance(button, SimulatedButton)
            button.press()
            button.release(0.1)
            failed = await settled(client, sent.json()["request_id"])
            await wait_for(
                lambda: not live.ctx.calls.test_calls.testing(COUNTER), "answerer hung up", WAIT_S
            )
            phase = agent.machine.phase
        finally:
            await client.aclose()
        with live.sessions() as session:
            record = session.get(CommandRecord, uuid.UUID(failed["request_id"]))
            assert record is not None
            stored = record.measurements
    assert failed["state"] == "failed", failed
    assert failed["detail"].startswith("appel de test interrompu : ")
    assert failed["measurements"] is None
    assert stored is None
    assert phase in (Phase.REQUESTING, Phase.WAITING)


async def test_past_the_server_s_limit_a_test_call_fails_saying_so(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """The answerer's refusal reaches the action as the counter's ack, in French."""
    async with (
        fleet(broker, db_url) as (live, token),
        counter(tmp_path, broker, live, token),
    ):
        live.ctx.calls.test_calls.max_tests = 0  # as if the server ran its limit already
        client, csrf = await admin_client(live)
        try:
            sent = await api_action(client, csrf, "test_call")
            assert sent.status_code == 202, sent.text
            failed = await settled(client, sent.json()["request_id"])
        finally:
            await client.aclose()
    assert failed["state"] == "failed", failed
    assert failed["detail"] == (
        "appel de test : refusé : le serveur mène déjà 0 appels de test ; réessayez dans une minute"
    )
    assert failed["measurements"] is None


async def test_a_test_call_gets_turn_credentials_of_its_own_for_both_ends(
    broker: Broker, db_url: str, tmp_path: Path, turn_server: Coturn
) -> None:
    """With a TURN relay configured, the counter and the answerer each allocate under this
    test call's own name, as the counter and the agent of a citizen's call would."""
    async with (
        fleet(broker, db_url, **turn_server.server_settings(("udp",))) as (live, token),
        counter(tmp_path, broker, live, token) as appliance,
    ):
        agent = appliance.call_agent
        assert agent is not None
        client, csrf = await admin_client(live)
        try:
            sent = await api_action(client, csrf, "test_call")
            assert sent.status_code == 202, sent.text
            await wait_for(lambda: agent.line_test is not None, "test call started", WAIT_S)
            test = agent.line_test
            assert test is not None
            done = await settled(client, sent.json()["request_id"])
        finally:
            await client.aclose()
    assert done["state"] == "done", done
    log = turn_server.log()
    assert f"{test.call_id}.counter" in log
    assert f"{test.call_id}.agent" in log
