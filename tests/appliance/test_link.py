"""The fleet link against a real Mosquitto, under MQTT 5 and 3.1.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import guichet
from appliance.config import ApplianceConfig, TlsSection
from appliance.fleet import client as fleet_client
from appliance.fleet import link as fleet_link
from appliance.fleet.commands import CommandHandler
from appliance.fleet.link import END_BUDGET_S, STOP_BUDGET_S, FleetLink
from appliance.fleet.outbox import Outbox
from appliance.fleet.settings import STORED_CONFIG_NAME, RuntimeSettings
from appliance.fleet.tls import tls_context
from guichet import contract
from image.enrol_rig import CA_EXTENSIONS, LEAF_EXTENSIONS
from tests.appliance.mqtt_observer import Observer
from tests.support.mosquitto import Broker, free_port

DEVICE = "guichet-test"
STATUS = contract.topic(DEVICE, contract.Kind.STATUS)
EVENTS = contract.topic(DEVICE, contract.Kind.EVENT)
CMD = contract.topic(DEVICE, contract.Kind.CMD)
ACK = contract.topic(DEVICE, contract.Kind.CMD_ACK)
CONFIG = contract.topic(DEVICE, contract.Kind.CONFIG)
TELEMETRY = contract.topic(DEVICE, contract.Kind.TELEMETRY)
PROTOCOLS = ["5", "3.1.1"]


def make_config(data_dir: Path, url: str, protocol: str, **fleet: Any) -> ApplianceConfig:
    return ApplianceConfig.model_validate(
        {
            "device": {"id": DEVICE, "site": "Essai", "data_dir": data_dir},
            "fleet": {
                "mqtt_url": url,
                "protocol": protocol,
                "keepalive_s": 5,
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 1.0,
                **fleet,
            },
        }
    )


@asynccontextmanager
async def running_link(config: ApplianceConfig) -> AsyncIterator[FleetLink]:
    """A link running in the background; fails the test if its task died."""
    data_dir = config.device.data_dir
    outbox = await Outbox.open(data_dir / "outbox.sqlite3", config.fleet.outbox_max_messages)
    settings = RuntimeSettings(config.fleet.telemetry_interval_s, store_dir=data_dir)
    link = FleetLink(config, outbox, settings, CommandHandler(settings))
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        await link.stop()
        await asyncio.wait_for(task, 5)
        await outbox.close()


def an_event(n: int) -> contract.Event:
    return contract.Event(
        id=uuid.uuid4(), at=contract.utcnow(), kind=contract.EventKind.SELFTEST, data={"n": n}
    )


def a_command(name: str, **args: contract.Scalar) -> bytes:
    command = contract.Command(request_id=uuid.uuid4(), at=contract.utcnow(), name=name, args=args)
    return contract.encode(command)


def decode_status(payload: bytes) -> contract.Status:
    status = contract.decode(contract.Kind.STATUS, payload)
    assert isinstance(status, contract.Status)
    return status


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker.port, [f"guichet/v1/{DEVICE}/#"]).start()
    yield obs
    obs.stop()


async def test_online_status_is_retained_on_connect(
    broker: Broker, tmp_path: Path, protocol: str
) -> None:
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        late = Observer(broker.port, [STATUS]).start()  # subscribes after the fact
        try:
            seen = await late.next_on(STATUS)
        finally:
            late.stop()
    assert seen.retain
    status = decode_status(seen.payload)
    assert status.state is contract.Presence.ONLINE
    assert status.software_version == guichet.__version__
    assert status.telemetry_interval_s == 30


async def test_clean_stop_leaves_a_retained_offline_within_budget(
    broker: Broker, tmp_path: Path, protocol: str, observer: Observer
) -> None:
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        assert decode_status((await observer.next_on(STATUS)).payload).state == "online"
        started = time.monotonic()
        await link.stop()
        elapsed = time.monotonic() - started
        offline = decode_status((await observer.next_on(STATUS, timeout=2)).payload)
    assert elapsed < STOP_BUDGET_S
    assert offline.state is contract.Presence.OFFLINE
    assert offline.reason == "shutdown"
    late = Observer(broker.port, [STATUS]).start()
    try:
        retained = await late.next_on(STATUS)
    finally:
        late.stop()
    assert retained.retain
    assert decode_status(retained.payload).reason == "shutdown"


async def test_events_sent_while_the_broker_is_down_arrive_in_order_once(
    tmp_path: Path, protocol: str
) -> None:
    broker = Broker(
        workdir=tmp_path / "mosquitto",
        extra_config=f"persistence true\npersistence_location {tmp_path / 'mosquitto'}/\n",
    )
    broker.start()
    # A persistent subscriber: the broker keeps its session (and queues for it) across
    # its own restart, so what the counter sends at once after the restart is not missed.
    server = Observer(broker.port, [EVENTS], client_id="fleet-server", persistent=True).start()
    try:
        async with running_link(make_config(tmp_path / "data", broker.url, protocol)) as link:
            await asyncio.wait_for(link.wait_connected(), 10)
            broker.stop()
            await asyncio.wait_for(link.wait_disconnected(), 10)
            sent = [an_event(n) for n in range(50)]
            for event in sent:
                await link.send(contract.Kind.EVENT, event)
            broker.start()
            await asyncio.wait_for(link.wait_connected(), 10)
            sentinel = an_event(-1)
            await link.send(contract.Kind.EVENT, sentinel)
            received = await _events_until(server, sentinel.id)
    finally:
        server.stop()
        broker.stop()
    assert received == [e.id for e in sent]


async def _events_until(server: Observer, last: uuid.UUID) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    while True:
        event = contract.decode(contract.Kind.EVENT, (await server.next_on(EVENTS)).payload)
        assert isinstance(event, contract.Event)
        if event.id == last:
            return ids
        ids.append(event.id)


async def test_outbox_is_delivered_by_the_next_link_after_a_restart(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    broker.stop()
    config = make_config(tmp_path, broker.url, "5")
    sent = [an_event(n) for n in range(5)]
    async with running_link(config) as link:
        for event in sent:
            await link.send(contract.Kind.EVENT, event)
        assert not link.connected
    broker.start()
    observer.wait_subscribed()
    async with running_link(config) as link:
        sentinel = an_event(-1)
        await link.send(contract.Kind.EVENT, sentinel)
        received = await _events_until(observer, sentinel.id)
    assert received == [e.id for e in sent]


async def test_ping_is_acknowledged_and_unknown_commands_refused(
    broker: Broker, tmp_path: Path, protocol: str, observer: Observer
) -> None:
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        for name, ok, detail in [
            ("ping", True, "pong"),
            ("reboot-now", False, "commande inconnue"),
        ]:
            payload = a_command(name)
            observer.publish(CMD, payload)
            ack = contract.decode(contract.Kind.CMD_ACK, (await observer.next_on(ACK)).payload)
            assert isinstance(ack, contract.CommandAck)
            assert ack.request_id == uuid.UUID(json.loads(payload)["request_id"])
            assert (ack.ok, ack.detail) == (ok, detail)


async def test_set_telemetry_interval_is_applied_and_announced(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running_link(make_config(tmp_path, broker.url, "5")) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        await observer.next_on(STATUS)
        observer.publish(CMD, a_command("set_telemetry_interval", seconds=120))
        ack = contract.decode(contract.Kind.CMD_ACK, (await observer.next_on(ACK)).payload)
        assert isinstance(ack, contract.CommandAck)
        assert ack.ok
        assert decode_status((await observer.next_on(STATUS)).payload).telemetry_interval_s == 120
        assert link._settings.telemetry_interval_s == 120
        observer.publish(CMD, a_command("set_telemetry_interval", seconds=1))
        refused = contract.decode(contract.Kind.CMD_ACK, (await observer.next_on(ACK)).payload)
        assert isinstance(refused, contract.CommandAck)
        assert not refused.ok


async def test_retained_config_is_applied_and_stored(
    broker: Broker, tmp_path: Path, protocol: str, observer: Observer
) -> None:
    config = contract.DeviceConfig(
        version=3, issued_at=datetime(2025, 1, 1, tzinfo=UTC), telemetry_interval_s=15
    )
    observer.publish(CONFIG, contract.encode(config), retain=True)
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        status = decode_status((await observer.next_on(STATUS)).payload)
        if status.telemetry_interval_s != 15:  # config may land just after the first status
            status = decode_status((await observer.next_on(STATUS)).payload)
        assert status.telemetry_interval_s == 15
        assert link.connected
    stored = contract.decode(contract.Kind.CONFIG, (tmp_path / STORED_CONFIG_NAME).read_bytes())
    assert stored == config
    restarted = RuntimeSettings(30, store_dir=tmp_path)
    await restarted.load_stored()
    assert restarted.telemetry_interval_s == 15


MALFORMED = [
    (CMD, b"not json"),
    (CMD, b'{"v": 1, "name": "ping"}'),
    (CMD, b'{"v": 2, "request_id": "x", "at": "2025-01-01T00:00:00Z", "name": "ping"}'),
    (CMD, b"[" * 200_000),
    (CONFIG, b'{"v": 1, "version": "three"}'),
    (CONFIG, b"\xff\xfe"),
]


async def test_malformed_commands_and_configs_are_counted_and_ignored(
    broker: Broker, tmp_path: Path, protocol: str, observer: Observer
) -> None:
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        for topic, payload in MALFORMED:
            observer.publish(topic, payload)
        observer.publish(CMD, a_command("ping"))
        ack = contract.decode(contract.Kind.CMD_ACK, (await observer.next_on(ACK)).payload)
        assert isinstance(ack, contract.CommandAck)
        assert ack.ok
        assert link.stats.malformed == len(MALFORMED)
        assert link.connected


async def test_telemetry_is_dropped_while_offline(broker: Broker, tmp_path: Path) -> None:
    broker.stop()
    async with running_link(make_config(tmp_path, broker.url, "5")) as link:
        await link.send(contract.Kind.TELEMETRY, a_telemetry())
        assert link.stats.telemetry_dropped == 1
        assert link._outbox.count == 0


async def test_telemetry_is_published_at_qos_0_when_connected(
    broker: Broker, tmp_path: Path, protocol: str, observer: Observer
) -> None:
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        await link.send(contract.Kind.TELEMETRY, a_telemetry())
        seen = await observer.next_on(TELEMETRY)
        assert link.stats.telemetry_sent == 1
    assert contract.decode(contract.Kind.TELEMETRY, seen.payload) == a_telemetry()


def a_telemetry() -> contract.Telemetry:
    fixture = Path(__file__).parents[1] / "fixtures" / "contract" / "telemetry.json"
    message = contract.decode(contract.Kind.TELEMETRY, fixture.read_bytes())
    assert isinstance(message, contract.Telemetry)
    return message


async def test_stop_while_the_broker_is_unreachable_is_prompt(
    broker: Broker, tmp_path: Path
) -> None:
    broker.stop()
    async with running_link(make_config(tmp_path, broker.url, "5")) as link:
        started = time.monotonic()
        await link.stop()
        assert time.monotonic() - started < STOP_BUDGET_S


def make_pki(directory: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ca_ext = [arg for ext in CA_EXTENSIONS for arg in ("-addext", ext)]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=Guichet Test CA", *ca_ext)  # fmt: skip
    # strict X.509, as the counter's TLS context checks (see image/enrol_rig.py)
    client = [e for e in LEAF_EXTENSIONS if not e.startswith("extendedKeyUsage")]
    extensions = {
        "server": [*LEAF_EXTENSIONS, "subjectAltName=IP:127.0.0.1"],
        "client": [*client, "extendedKeyUsage=clientAuth"],
    }
    for name, cn in (("server", "127.0.0.1"), ("client", DEVICE)):
        (directory / f"{name}.ext").write_text("\n".join(extensions[name]) + "\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                "-extfile", f"{name}.ext")  # fmt: skip
    return {
        n: directory / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }


async def test_mqtts_with_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls_port = free_port()
    broker = Broker(
        workdir=tmp_path / "mosquitto",
        extra_config=(
            f"listener {tls_port} 127.0.0.1\n"
            f"cafile {pki['ca.pem']}\ncertfile {pki['server.pem']}\nkeyfile {pki['server.key']}\n"
            "require_certificate true\n"
        ),
    )
    broker.start()
    observer = Observer(broker.port, [STATUS]).start()  # plain listener, same broker
    try:
        config = make_config(
            tmp_path / "data",
            f"mqtts://127.0.0.1:{tls_port}",
            "5",
            tls={
                "ca_file": pki["ca.pem"],
                "cert_file": pki["client.pem"],
                "key_file": pki["client.key"],
            },
        )
        async with running_link(config) as link:
            await asyncio.wait_for(link.wait_connected(), 10)
            status = decode_status((await observer.next_on(STATUS)).payload)
            assert status.state is contract.Presence.ONLINE
    finally:
        observer.stop()
        broker.stop()


def test_tls_context_follows_the_config(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    strict = tls_context(TlsSection(ca_file=pki["ca.pem"]))
    assert strict.check_hostname
    assert strict.verify_mode is ssl.CERT_REQUIRED
    lax = tls_context(TlsSection(ca_file=pki["ca.pem"], insecure_skip_verify=True))
    assert not lax.check_hostname
    assert lax.verify_mode is ssl.CERT_NONE


# --- stopping always ends the link ---------------------------------------------------------

RUN_ENDS_WITHIN_S = STOP_BUDGET_S + END_BUDGET_S + 1.0  # stop()'s worst case, and a margin


async def _stop_and_wait(link: FleetLink, task: asyncio.Task[None]) -> float:
    """stop(), then run()'s end; fails (rather than hangs) if run() outlives the bound."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(RUN_ENDS_WITHIN_S):
            await link.stop()
            await asyncio.wait({task})  # does not cancel the task: a timeout fails the test
    except TimeoutError:
        pytest.fail(f"run() still running {RUN_ENDS_WITHIN_S} s after stop()")
    task.result()
    return time.monotonic() - started


@pytest.mark.parametrize("stop_before_the_puback_is_handled", [True, False])
async def test_stop_arriving_with_a_puback_still_ends_the_link(
    broker: Broker,
    tmp_path: Path,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
    stop_before_the_puback_is_handled: bool,
) -> None:
    """The hang seen under load: stop() as the PUBACK of an "online" status arrived. The
    task waiting for that PUBACK was cancelled just as its wait completed; Python 3.11's
    asyncio.wait_for (used by aiomqtt) then swallowed the cancellation, the task went on
    waiting for a settings change, and the aborting TaskGroup waited for it for ever.
    Here the stop is requested from paho's on_publish itself, so it always coincides."""
    config = make_config(tmp_path, broker.url, protocol)
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3", config.fleet.outbox_max_messages)
    settings = RuntimeSettings(config.fleet.telemetry_interval_s, store_dir=tmp_path)
    link = FleetLink(config, outbox, settings, CommandHandler(settings))
    armed = False
    fired = asyncio.Event()

    def stop_on_puback(inner: Any) -> Any:
        def on_publish(*args: Any) -> None:
            nonlocal armed
            fire, armed = armed, False
            if fire and stop_before_the_puback_is_handled:
                link._stop_requested.set()  # what stop() does first, synchronously
            inner(*args)
            if fire and not stop_before_the_puback_is_handled:
                link._stop_requested.set()
            if fire:
                fired.set()

        return on_publish

    def new_client(*args: Any, **kwargs: Any) -> aiomqtt.Client:
        client = fleet_client.new_client(*args, **kwargs)
        client._client.on_publish = stop_on_puback(client._client.on_publish)
        return client

    monkeypatch.setattr(fleet_link, "new_client", new_client)
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.wait_connected(), 10)
        armed = True
        settings.set_telemetry_interval(60, source="test")  # a new "online" status, QoS 1
        await asyncio.wait_for(fired.wait(), 10)  # the stop came with its PUBACK
        await _stop_and_wait(link, task)
    finally:
        task.cancel()
        await outbox.close()


async def test_the_goodbye_runs_with_no_cancellation_pending(
    broker: Broker, tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session task says "offline" with no cancellation request left on it. One left
    over (Python 3.11's TaskGroup when a task, not the body, ends the group) turns the
    goodbye's timeout into a CancelledError on Debian 12's Python 3.11.2: a frozen broker
    then made the link end with an error instead of giving up on the goodbye."""
    pending: list[int] = []
    say_goodbye = FleetLink._say_goodbye

    async def recording(self: FleetLink, client: aiomqtt.Client) -> None:
        task = asyncio.current_task()
        assert task is not None
        pending.append(task.cancelling())
        await say_goodbye(self, client)

    monkeypatch.setattr(FleetLink, "_say_goodbye", recording)
    async with running_link(make_config(tmp_path, broker.url, protocol)) as link:
        await asyncio.wait_for(link.wait_connected(), 10)
        await link.stop()
    assert pending == [0]


async def test_stop_is_bounded_when_the_broker_stops_answering(
    broker: Broker, tmp_path: Path, protocol: str
) -> None:
    """A frozen broker (SIGSTOP): no PUBACK for the "offline", the TCP connection still
    up. The link gives up on the goodbye and ends in time; the broker, once it runs
    again, still ends up with a retained "offline" (the goodbye, or the last will)."""
    process = broker.process
    assert process is not None
    config = make_config(tmp_path, broker.url, protocol)
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3", config.fleet.outbox_max_messages)
    settings = RuntimeSettings(config.fleet.telemetry_interval_s, store_dir=tmp_path)
    link = FleetLink(config, outbox, settings, CommandHandler(settings))
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.wait_connected(), 10)
        os.kill(process.pid, signal.SIGSTOP)
        try:
            elapsed = await _stop_and_wait(link, task)
        finally:
            os.kill(process.pid, signal.SIGCONT)
    finally:
        task.cancel()
        await outbox.close()
    assert elapsed < RUN_ENDS_WITHIN_S
    # Woken up, the broker may serve a new subscriber before it has read the cut connection
    # (the retained "online" first, then the will): wait for the "offline" it ends up with…
    watcher = Observer(broker.port, [STATUS]).start()
    try:
        seen = await watcher.next_on(STATUS)
        while decode_status(seen.payload).state is not contract.Presence.OFFLINE:
            seen = await watcher.next_on(STATUS)
    finally:
        watcher.stop()
    # …and a counter's page opened afterwards is told "offline" by the retained status.
    late = Observer(broker.port, [STATUS]).start()
    try:
        retained = await late.next_on(STATUS)
    finally:
        late.stop()
    assert retained.retain
    assert decode_status(retained.payload).state is contract.Presence.OFFLINE


async def test_client_waits_never_swallow_a_cancellation(tmp_path: Path) -> None:
    """The wait for an acknowledgement is cancelled just as it completes (0 to 5 loop
    turns after the acknowledgement): a cancellation the task accepted must end it."""
    config = make_config(tmp_path, "mqtt://127.0.0.1:1", "5")
    client = fleet_client.new_client(
        config.fleet,
        identifier=DEVICE,
        will=aiomqtt.Will(STATUS),
        tls=None,
        on_refused=lambda: None,
    )
    swallowed = []
    for steps in range(6):
        acknowledged = asyncio.Event()

        async def wait_for_ack(acknowledged: asyncio.Event = acknowledged) -> None:
            await client._wait_for(acknowledged.wait(), timeout=10)

        task = asyncio.create_task(wait_for_ack())
        await asyncio.sleep(0)
        acknowledged.set()
        for _ in range(steps):
            await asyncio.sleep(0)
        accepted = task.cancel()  # False once the task has finished: nothing to swallow
        await asyncio.wait({task})
        if accepted and not task.cancelled():
            swallowed.append(steps)
    assert swallowed == []
