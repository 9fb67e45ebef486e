"""Remote support's actions end to end (issue 14, item 1): the running fleet app, a real
Mosquitto and a running counter (simulated hardware). An administrator's action goes out as
``cmd``, the counter's ``cmd/ack`` is stored and shown; restart → the counter stops cleanly
and, started again, reconnects; the self-test's checks are stored; offline or in a call →
refused; every action is in the audit log.

Like an attacker: a forged ack (wrong request id), another counter's ack for this command,
and a replayed ack change nothing; CSRF missing, unknown counters and another site's ids in
a batch are refused (the roles' 403s are in test_routes_access.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from appliance.app import Appliance
from appliance.config import parse_config
from appliance.hw.ports.system import SimulatedSystemPower
from fleet_server.models import AuditEntry, CommandRecord, Device
from fleet_server.security import auth
from guichet import contract
from tests.support.actions_api import action_settled
from tests.support.call_harness import wait_for
from tests.support.live_server import LiveApp, live_app, receive, send
from tests.support.mosquitto import Broker
from tests.support.webapp import CSRF_RE

COUNTER, SITE = "monts-de-chalus", "Monts de Châlus"
WAIT_S = 20.0


def counter_config(tmp_path: Path, broker: Broker) -> Any:
    return parse_config(
        f'[device]\nid = "{COUNTER}"\nsite = "{SITE}"\ndata_dir = "{tmp_path / "counter"}"\n\n'
        f'[fleet]\nmqtt_url = "{broker.url}"\nkeepalive_s = 5\ntelemetry_interval_s = 30\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
        '[hardware]\nsystem = "simulated"\n'
    )


@asynccontextmanager
async def fleet(broker: Broker, db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(
        db_url,
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
    ) as live:
        assert await asyncio.to_thread(live.ctx.ingest.wait_connected, WAIT_S)  # type: ignore[union-attr]
        live.add_user("admin", role="admin", service=None)
        yield live


@asynccontextmanager
async def counter(tmp_path: Path, broker: Broker) -> AsyncIterator[Appliance]:
    appliance = Appliance(counter_config(tmp_path, broker))
    task = asyncio.create_task(appliance.run())
    await asyncio.wait_for(appliance.wait_ready(), 10)
    try:
        yield appliance
    finally:
        await asyncio.wait_for(appliance.stop(), 5)
        await asyncio.wait_for(task, 5)


def state_of(live: LiveApp, device_id: str) -> str | None:
    with live.sessions() as session:
        device = session.get(Device, device_id)
        return device.state if device is not None else None


async def online(live: LiveApp, device_id: str = COUNTER) -> None:
    await wait_for(lambda: state_of(live, device_id) == "online", "online", WAIT_S)


async def admin_client(live: LiveApp) -> tuple[httpx.AsyncClient, str]:
    client = await live.login("admin")
    match = CSRF_RE.search((await client.get("/")).text)
    assert match
    return client, match.group(1)


async def act(
    client: httpx.AsyncClient, csrf: str, action: str, device_id: str = COUNTER
) -> httpx.Response:
    """What the page's script does: the form, in JSON."""
    return await client.post(
        f"/devices/{device_id}/actions",
        data={"action": action, "csrf_token": csrf},
        headers={"Accept": "application/json"},
    )


settled = partial(action_settled, device_id=COUNTER, timeout_s=WAIT_S)


async def test_selftest_refresh_and_reboot_round_trip_and_are_audited(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    async with fleet(broker, db_url) as live, counter(tmp_path, broker) as appliance:
        await online(live)
        client, csrf = await admin_client(live)
        try:
            sent = await act(client, csrf, "selftest")
            assert sent.status_code == 202, sent.text
            assert sent.json()["message"] == "« Lancer l'autotest » envoyé au guichet."
            selftest = await settled(client, sent.json()["request_id"])
            refreshed = await act(client, csrf, "refresh_config")
            refresh = await settled(client, refreshed.json()["request_id"])
            louder = await client.post(
                f"/devices/{COUNTER}/actions",
                data={"action": "set_volume", "percent": "60", "csrf_token": csrf},
                headers={"Accept": "application/json"},
            )
            volume = await settled(client, louder.json()["request_id"])
            no_level = await act(client, csrf, "set_brightness")
            rebooted = await act(client, csrf, "reboot")
            reboot = await settled(client, rebooted.json()["request_id"])
            page = (await client.get(f"/devices/{COUNTER}/actions")).text
        finally:
            await client.aclose()
        power = appliance.hardware.power
        assert isinstance(power, SimulatedSystemPower)
        await wait_for(lambda: power.reboots == 1, "the reboot", WAIT_S)
        with live.sessions() as session:
            audited = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "command.send")
            ).all()
    assert (selftest["state"], selftest["detail"]) == ("done", "autotest réussi (6 contrôles)")
    assert [c["name"] for c in selftest["checks"]] == [
        "camera", "screen", "printer", "scanner", "network", "broker",
    ]  # fmt: skip
    assert {c["outcome"] for c in selftest["checks"]} == {"ok"}
    assert refresh["state"] == "done"
    assert refresh["detail"].startswith("configuration n° ")
    assert (reboot["state"], reboot["detail"]) == ("done", "redémarrage du boîtier")
    assert (volume["state"], volume["percent"]) == ("done", 60)
    assert volume["detail"] == "volume du haut-parleur réglé à 60 %"
    assert (no_level.status_code, no_level.json()["error"]) == (
        400, "« Régler la luminosité de l'écran » refusé : indiquez un niveau de 0 à 100 %."
    )  # fmt: skip
    assert "Courtier MQTT" in page  # each check, in French, on the page
    assert sorted(e.detail["command"] for e in audited) == [
        "reboot", "refresh_config", "selftest", "set_volume",
    ]  # fmt: skip
    assert {(e.actor, e.target) for e in audited} == {("admin", COUNTER)}


async def test_restart_the_counter_stops_cleanly_and_reconnects(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    async with fleet(broker, db_url) as live:
        first = Appliance(counter_config(tmp_path, broker))
        running = asyncio.create_task(first.run())
        await online(live)
        client, csrf = await admin_client(live)
        try:
            sent = await act(client, csrf, "restart")
            assert sent.status_code == 202, sent.text
            await asyncio.wait_for(running, WAIT_S)  # run() returned: the process would exit 0
            await wait_for(lambda: state_of(live, COUNTER) == "offline", "offline", WAIT_S)
            async with counter(tmp_path, broker):  # systemd's Restart=always
                await online(live)
                restart = await settled(client, sent.json()["request_id"])
        finally:
            await client.aclose()
    assert (restart["state"], restart["detail"]) == ("done", "redémarrage du logiciel du guichet")


async def test_offline_in_a_call_unknown_and_no_csrf_are_refused(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    async with fleet(broker, db_url) as live:
        token = live.add_counter(COUNTER, SITE, "Guichet 1")
        with live.sessions.begin() as session:
            session.add(Device(id="vallee-de-la-gorre", site="Ailleurs", name="2", state="offline"))
        live.add_user("alice")  # an agent of the counter's service
        agent = await live.login("alice")
        client, csrf = await admin_client(live)
        try:
            offline = await act(client, csrf, "restart", "vallee-de-la-gorre")
            unknown = await act(client, csrf, "restart", "inconnu")
            no_csrf = await client.post(
                f"/devices/{COUNTER}/actions", data={"action": "restart"},
                headers={"Accept": "application/json"},
            )  # fmt: skip
            async with counter(tmp_path, broker), live.counter_socket(token) as ws:
                await online(live)
                async with live.agent_socket(agent):
                    await receive(ws, "welcome")
                    await send(ws, {"type": "call_request", "call_id": str(uuid.uuid4())})
                    await receive(ws, "call_queued")
                    in_call = await act(client, csrf, "reboot")
                    refresh = await act(client, csrf, "refresh_config")  # cuts nobody off
        finally:
            await client.aclose()
            await agent.aclose()
        with live.sessions() as session:
            names = session.scalars(select(CommandRecord.name)).all()
    assert offline.status_code == 409
    assert offline.json()["error"] == (
        "« Redémarrer le logiciel » refusé : le guichet n'est pas en ligne : l'action ne peut"
        " pas lui parvenir."
    )
    assert unknown.status_code == 404
    assert no_csrf.status_code == 403
    assert in_call.status_code == 409
    assert "un appel est en cours sur ce guichet" in in_call.json()["error"]
    assert refresh.status_code == 202
    assert names == ["refresh_config"]  # nothing refused was recorded or sent


async def test_a_batch_acts_on_its_site_only(broker: Broker, db_url: str) -> None:
    async with fleet(broker, db_url) as live:
        with live.sessions.begin() as session:
            session.add(Device(id="a-1", site="A", name="1", state="online"))
            session.add(Device(id="a-2", site="A", name="2", state="offline"))
            session.add(Device(id="b-1", site="B", name="1", state="online"))
        client, csrf = await admin_client(live)
        try:
            both = await client.post(
                "/api/v1/actions",
                json={"action": "selftest", "site": "A", "device_ids": ["a-1", "b-1", "zz"]},
                headers={"X-CSRF-Token": csrf},
            )
            site = await client.post(
                "/api/v1/actions", json={"action": "refresh_config", "site": "A"},
                headers={"X-CSRF-Token": csrf},
            )  # fmt: skip
            page = await client.get("/", params={"site": "A"})
            form = await client.post(
                "/fleet/actions",
                data={"action": "selftest", "site": "A", "percent": "", "csrf_token": csrf},
            )
            told = await client.get("/", params={"site": "A"})
        finally:
            await client.aclose()
    assert both.status_code == 202, both.text
    assert [a["device_id"] for a in both.json()["sent"]] == ["a-1"]
    assert set(both.json()["refused"]) == {"b-1", "zz"}
    assert [a["device_id"] for a in site.json()["sent"]] == ["a-1"]
    assert site.json()["refused"] == {
        "a-2": "le guichet n'est pas en ligne : l'action ne peut pas lui parvenir"
    }
    assert 'action="/fleet/actions"' in page.text
    assert "Action sur tous les guichets du site « A »" in page.text
    assert (form.status_code, form.headers["location"]) == (303, "/?site=A")
    assert (
        "« Lancer l&#39;autotest » envoyé à 1 guichet(s), refusé pour 1 : a-2 : le guichet"
        in told.text
    )


class Forger:
    """An MQTT client that publishes acks on any counter's topic (the test broker has no
    ACL: this is what a counter's own broker account could at most do on its own topic)."""

    def __init__(self, broker: Broker) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        assert self._client.connect("127.0.0.1", broker.port) == mqtt.MQTT_ERR_SUCCESS
        self._client.loop_start()

    def ack(self, device_id: str, request_id: uuid.UUID, *, ok: bool, detail: str) -> None:
        ack = contract.CommandAck(request_id=request_id, at=contract.utcnow(), ok=ok, detail=detail)
        topic = contract.topic(device_id, contract.Kind.CMD_ACK)
        self._client.publish(topic, contract.encode(ack), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.mark.parametrize("replay", [False, True], ids=["forged", "replayed"])
async def test_forged_foreign_and_replayed_acks_change_nothing(
    broker: Broker, db_url: str, replay: bool
) -> None:
    async with fleet(broker, db_url) as live:
        with live.sessions.begin() as session:  # online, but nobody answers for it
            session.add(Device(id=COUNTER, site=SITE, name="1", state="online"))
            session.add(Device(id="autre", site=SITE, name="2", state="online"))
        client, csrf = await admin_client(live)
        forger = Forger(broker)
        try:
            request_id = uuid.UUID((await act(client, csrf, "restart")).json()["request_id"])
            forger.ack(COUNTER, uuid.uuid4(), ok=True, detail="faux")  # wrong command id
            forger.ack("autre", request_id, ok=True, detail="pas le mien")  # another counter
            if replay:
                forger.ack(COUNTER, request_id, ok=False, detail="le vrai")
                forger.ack(COUNTER, request_id, ok=True, detail="rejoué")
            await wait_for(lambda: last_seen(live, "autre"), "the forged acks", WAIT_S)
            if replay:
                await wait_for(lambda: acked(live, request_id), "the real ack", WAIT_S)
                await asyncio.sleep(0.5)  # the replay went through the ingest meanwhile
            got = (await client.get(f"/api/v1/devices/{COUNTER}/actions/{request_id}")).json()
            with live.sessions.begin() as session:  # its deadline passes: unanswered
                record = session.get(CommandRecord, request_id)
                assert record is not None
                record.expires_at = record.sent_at - timedelta(seconds=1)
            late = (await client.get(f"/api/v1/devices/{COUNTER}/actions/{request_id}")).json()
        finally:
            forger.close()
            await client.aclose()
    if replay:
        assert (got["state"], got["detail"]) == ("failed", "le vrai")
        assert late["state"] == "failed"
    else:
        assert (got["state"], got["detail"]) == ("pending", None)
        assert (late["state"], late["state_label"]) == ("timeout", "Sans réponse du guichet")


def last_seen(live: LiveApp, device_id: str) -> bool:
    with live.sessions() as session:
        device = session.get(Device, device_id)
        return device is not None and device.last_seen is not None


def acked(live: LiveApp, request_id: uuid.UUID) -> bool:
    with live.sessions() as session:
        record = session.get(CommandRecord, request_id)
        return record is not None and record.acked_at is not None


async def test_an_api_token_acts_without_csrf_and_a_refused_publish_leaves_nothing(
    broker: Broker, db_url: str
) -> None:
    async with fleet(broker, db_url) as live:
        with live.sessions.begin() as session:
            session.add(Device(id=COUNTER, site=SITE, name="1", state="online"))
            token = auth.create_api_token(session, "admin")
        async with httpx.AsyncClient(
            base_url=live.url, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            sent = await api.post(f"/api/v1/devices/{COUNTER}/actions", json={"action": "selftest"})
            bad = await api.post(
                f"/api/v1/devices/{COUNTER}/actions", json={"action": "set_volume", "percent": 101}
            )
            broker.stop()  # the ingest loses the broker: nothing can be sent
            ingest = live.ctx.ingest
            assert ingest is not None
            await wait_for(lambda: not ingest.wait_connected(0), "the ingest disconnected")
            down = await api.post(f"/api/v1/devices/{COUNTER}/actions", json={"action": "restart"})
        with live.sessions() as session:
            names = session.scalars(select(CommandRecord.name)).all()
            audited = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "command.send")
            ).all()
    assert sent.status_code == 202, sent.text
    assert sent.json()["state"] == "pending"
    assert bad.status_code == 422
    assert down.status_code == 503
    assert (
        down.json()["detail"] == "Le courtier MQTT n'est pas connecté : réessayez dans un instant."
    )
    assert names == ["selftest"]  # the restart never left: no row, no audit entry
    assert [e.detail["command"] for e in audited] == ["selftest"]
