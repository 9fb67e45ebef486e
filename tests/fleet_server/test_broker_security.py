"""Per-counter broker credentials and ACLs against a real Mosquitto started from
``deploy/mosquitto/mosquitto.conf`` (TLS only, test CA made at test time), the fleet server
generating its password and ACL files — and a full enrolment whose logs hold no secret.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.exceptions import ConnectionClosed

from appliance import enrol
from appliance.config import ApplianceConfig
from fleet_server.mqtt.broker_files import render_acl
from fleet_server.security import enrolment
from guichet import contract
from image.enrol_rig import mosquitto_conf
from tests.support.databases import fresh_database
from tests.support.live_server import CSRF_RE, LiveApp, live_app
from tests.support.secure_broker import (
    DEPLOY_CONF,
    SERVER_USER,
    SecureBroker,
    secure_broker,
)

WAIT_S = 5.0  # the bound for a revoked counter's disconnection
NOT_AUTHORIZED = 0x87
ACCEPTED = (0x00, 0x10)  # success, or "no matching subscribers" (still accepted)
SERVER_PASSWORD = secrets.token_urlsafe(24)


@dataclass
class Probe:
    """A paho MQTT 5 client over TLS that records what the broker answers."""

    broker: SecureBroker
    username: str | None
    password: str | None
    client_id: str
    tls: bool = True
    connack: int | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    acks: dict[int, list[int]] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)
    messages: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, self.client_id, protocol=mqtt.MQTTv5)
        if self.tls:
            c.tls_set(ca_certs=str(self.broker.ca_file))
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *_a: self.disconnected.set()
        c.on_publish = lambda _c, _u, mid, rc, _p: self._ack(mid, [rc.value])
        c.on_subscribe = lambda _c, _u, mid, rcs, _p: self._ack(mid, [r.value for r in rcs])
        c.on_message = self._on_message
        self.client = c

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason.value
        self.connected.set()

    def _ack(self, mid: int, codes: list[int]) -> None:
        with self.acked:
            self.acks[mid] = codes
            self.acked.notify_all()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self.acked:
            self.messages.append(message.topic)
            self.payloads.append(message.payload)
            self.acked.notify_all()

    def wait_message(self, index: int = 0) -> str:
        """The topic of the index-th message received (in arrival order)."""
        with self.acked:
            assert self.acked.wait_for(lambda: len(self.messages) > index, WAIT_S)
            return self.messages[index]

    def wait_topics_until(self, topic: str) -> list[str]:
        """Every topic received up to and including the first message on ``topic``."""
        with self.acked:
            assert self.acked.wait_for(lambda: topic in self.messages, WAIT_S)
            return self.messages[: self.messages.index(topic) + 1]

    def connect(self) -> int:
        """The CONNACK reason code (0: accepted)."""
        self.connected.clear()
        self.disconnected.clear()
        self.client.connect("127.0.0.1", self.broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S) or self.disconnected.wait(0.1)
        return self.connack if self.connack is not None else -1

    def wait_ack(self, mid: int) -> list[int]:
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.acks, WAIT_S)
            return self.acks[mid]

    def publish(self, topic: str) -> int:
        return self.wait_ack(self.client.publish(topic, b"{}", qos=1).mid)[0]

    def subscribe(self, topic: str) -> int:
        return self.wait_ack(self.client.subscribe(topic, qos=1)[1])[0]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker() -> Iterator[SecureBroker]:
    with secure_broker("", render_acl(SERVER_USER)) as b:
        yield b


@pytest.fixture
async def server(broker: SecureBroker, tmp_path: Path) -> AsyncIterator[LiveApp]:
    with fresh_database("sqlite", tmp_path) as url:
        async with live_app(
            url,
            broker_files_dir=broker.files_dir,
            broker_pid_file=broker.pid_file,
            mqtt_username=SERVER_USER,
            mqtt_password=SERVER_PASSWORD,
            mqtt_url=f"mqtts://127.0.0.1:{broker.port}",
            mqtt_ca_file=str(broker.ca_file),
            ingest_enabled=True,  # the server's own TLS session, to send commands
        ) as app:
            app.add_user("admin", "admin", None)
            yield app


def counter_config(server: LiveApp, tmp_path: Path, device_id: str, token: str) -> ApplianceConfig:
    return ApplianceConfig.model_validate(
        {
            "device": {"id": device_id, "site": "Site", "data_dir": tmp_path / device_id},
            "fleet": {"enrolment_url": server.url, "enrolment_token": token},
        }
    )


def pre_approved_token(server: LiveApp) -> str:
    with server.sessions.begin() as session:
        return enrolment.create_token(
            session, site="Site", valid_hours=1, max_uses=5, pre_approved=True, actor="test"
        )


def test_deploy_config_is_used_as_shipped(tmp_path: Path) -> None:
    shipped = DEPLOY_CONF.read_text()
    used = mosquitto_conf(shipped, tmp_path, 12345)

    def directives(text: str) -> set[str]:
        lines = (ln.split()[0] for ln in text.splitlines() if ln.strip() and ln[0] != "#")
        return set(lines)

    assert directives(used) == directives(shipped)
    assert "allow_anonymous false" in used
    assert "listener 12345 127.0.0.1" in used
    assert len(re.findall(r"^listener ", used, re.M)) == 1  # TLS only: no plain listener
    acl = (DEPLOY_CONF.parent / "acl.example").read_text()
    assert acl == render_acl("guichet-fleet-server")


async def test_enrolled_counters_are_confined_and_revocation_is_immediate(
    server: LiveApp, broker: SecureBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = pre_approved_token(server)
    config_a = counter_config(server, tmp_path, "guichet-a", token)
    creds_a = await enrol.enrol(config_a, poll_interval_s=0.05)
    creds_b = await enrol.enrol(counter_config(server, tmp_path, "guichet-b", token))

    # Stored owner-only; the next start uses them without enrolling again.
    path = enrol.credentials_path(config_a)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert enrol.load_credentials(config_a) == creds_a
    started = await enrol.ensure_enrolled(config_a)
    assert started.fleet.password == creds_a.broker_password
    assert started.call.token == creds_a.call_token

    # No secret in any log record of the whole enrolment (server and counter sides).
    secrets_seen = [token, creds_a.broker_password, creds_a.call_token, creds_b.call_token]
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        assert not any(s in text for s in secrets_seen), record
        assert "gpp_" not in text, record  # a poll secret
        assert "gpe_" not in text, record  # an enrolment token

    a = Probe(broker, "guichet-a", creds_a.broker_password, "guichet-a")
    b = Probe(broker, "guichet-b", creds_b.broker_password, "guichet-b")
    try:
        assert a.connect() == 0
        assert b.connect() == 0
        # Every kind a counter sends, on its own subtree only (an update's progress too).
        for kind, spec in contract.KINDS.items():
            if spec.from_device:
                assert a.publish(contract.topic("guichet-a", kind)) in ACCEPTED, kind
                assert a.publish(contract.topic("guichet-b", kind)) == NOT_AUTHORIZED, kind
        assert a.publish("guichet/v1/guichet-a/status") in ACCEPTED
        assert a.publish("guichet/v1/guichet-b/status") == NOT_AUTHORIZED
        assert a.publish("guichet/v1/guichet-b/event") == NOT_AUTHORIZED
        assert a.publish("guichet/v1/guichet-a/config") == NOT_AUTHORIZED  # server → counter
        # Mosquitto 2.0's acl_file grants a SUBSCRIBE and then delivers only what the
        # subscriber may read: A's wildcard and B-topic subscriptions never carry B's command.
        for topic in ("guichet/v1/guichet-a/cmd", "guichet/v1/guichet-b/cmd", "guichet/#"):
            assert a.subscribe(topic) == 1
        assert b.subscribe("guichet/v1/guichet-b/cmd") == 1
        fleet = Probe(broker, SERVER_USER, SERVER_PASSWORD, "fleet-probe")
        assert fleet.connect() == 0
        fleet.publish("guichet/v1/guichet-b/cmd")  # first B's command, then A's own
        fleet.publish("guichet/v1/guichet-a/cmd")
        fleet.stop()
        assert b.wait_message() == "guichet/v1/guichet-b/cmd"
        # In order, so B's command (sent first) never came; A may also get its own retained
        # config, which the fleet server publishes for every enrolled counter.
        seen_by_a = a.wait_topics_until("guichet/v1/guichet-a/cmd")
        assert set(seen_by_a) <= {"guichet/v1/guichet-a/config", "guichet/v1/guichet-a/cmd"}

        # Decommissioning A: disconnected within 5 s, cannot come back, signalling refused.
        admin = await server.login("admin")
        page = await admin.get("/admin/enrolment")
        csrf = CSRF_RE.search(page.text)
        assert csrf
        t0 = time.monotonic()
        revoked = await admin.post("/devices/guichet-a/revoke", data={"csrf_token": csrf.group(1)})
        assert revoked.status_code in (200, 303)
        assert a.disconnected.wait(WAIT_S), broker.log()[-2000:]
        assert time.monotonic() - t0 < WAIT_S
        a.client.loop_stop()
        again = Probe(broker, "guichet-a", creds_a.broker_password, "guichet-a-2")
        assert again.connect() != 0
        again.client.loop_stop()
        assert b.publish("guichet/v1/guichet-b/status") in ACCEPTED  # B is untouched
        with pytest.raises(ConnectionClosed) as closed:
            async with server.counter_socket(creds_a.call_token) as ws:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401

        # Rotation on command: B gets a rotate_credentials command carrying a poll secret,
        # collects new credentials; the old password stops working, the new one works.
        config_b = counter_config(server, tmp_path, "guichet-b", token)
        rotated = await admin.post("/devices/guichet-b/rotate", data={"csrf_token": csrf.group(1)})
        assert rotated.status_code in (200, 303), rotated.text
        assert b.wait_message(1) == "guichet/v1/guichet-b/cmd"
        command = json.loads(b.payloads[1])
        assert command["name"] == "rotate_credentials"
        new_b = await enrol.rotate(config_b, command["args"]["poll"])
        assert new_b.broker_password != creds_b.broker_password
        assert enrol.load_credentials(config_b) == new_b
        old_b = Probe(broker, "guichet-b", creds_b.broker_password, "guichet-b-old")
        assert old_b.connect() != 0
        old_b.client.loop_stop()
        fresh_b = Probe(broker, "guichet-b", new_b.broker_password, "guichet-b-new")
        assert fresh_b.connect() == 0
        fresh_b.stop()
        await admin.aclose()
    finally:
        a.stop()
        b.stop()


def test_unknown_wrong_and_anonymous_clients_are_refused(
    broker: SecureBroker, tmp_path: Path
) -> None:
    from fleet_server.mqtt.broker_files import _write_atomically

    password = secrets.token_urlsafe(32)
    line = f"guichet-a:{enrolment.broker_password_hash(password)}\n"
    _write_atomically(broker.files_dir / "passwd", line)
    broker.reload()
    ok = Probe(broker, "guichet-a", password, "ok")
    deadline = time.monotonic() + WAIT_S
    while ok.connect() != 0 and time.monotonic() < deadline:  # the reload is asynchronous
        ok.client.loop_stop()
    ok.stop()
    for username, pw in [("guichet-z", password), ("guichet-a", "wrong"), (None, None)]:
        probe = Probe(broker, username, pw, f"probe-{username}")
        assert probe.connect() != 0
        probe.client.loop_stop()


def test_plain_tcp_is_refused_on_the_tls_listener(broker: SecureBroker) -> None:
    """A plain MQTT CONNECT on the only listener gets no CONNACK: the TLS handshake fails."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=WAIT_S) as raw:
        raw.sendall(b"\x10\x0c\x00\x04MQTT\x05\x02\x00\x1e\x00")  # MQTT 5 CONNECT, no TLS
        try:
            answer = raw.recv(16)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"\x20")  # no CONNACK
    tls = Probe(broker, None, None, "anonymous-over-tls")
    assert tls.connect() != 0  # the same port does speak TLS (and refuses anonymous)
    tls.client.loop_stop()
