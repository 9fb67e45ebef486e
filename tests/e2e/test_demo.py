"""``guichet demo`` as a newcomer runs it (issue 17): the real command in a directory of its
own, its own Mosquitto, the fleet server and four counter processes; the other ``guichet
demo …`` commands run as separate processes, as typed in a second terminal.

- A counter killed outright is reported and started again; ``demo stop``/``start`` act on
  this demo's counter only; ``demo press`` answers at once for an unknown or stopped counter.
- An outside subscriber to ``guichet/v1/+/status`` receives the status messages and nothing
  else; a counter's account receives its own retained messages only.
- Stopping it (``kill -INT`` to the demo alone, or Ctrl-C to the whole process group) stores
  every counter offline before the server stops, and the next run shows them online anew.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from fleet_server.db import make_engine, make_session_factory
from fleet_server.models import Device, StatusChange
from guichet import contract
from guichet_cli.demo_scheme import COUNTERS
from guichet_cli.demo_state import read_state
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120.0  # four counter processes import aiortc and PyAV on a loaded machine
STOP_TIMEOUT_S = 60.0
POLL_S = 0.2
AT_ONCE_S = 5.0  # "at once": a process start and one round trip, far from the old 15 s
FENCE_TIMEOUT_S = 10.0
IDS = [c.device_id for c in COUNTERS]


@dataclass
class Demo:
    cwd: Path
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def demo_dir(self) -> Path:
        return self.cwd / "var" / "demo"

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``guichet demo ARGS`` typed in another terminal, in the same directory."""
        return subprocess.run(
            [sys.executable, "-m", "guichet_cli", "demo", *args],
            cwd=self.cwd,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def states(self) -> dict[str, str]:
        engine = make_engine(f"sqlite:///{self.demo_dir / 'fleet.sqlite3'}")
        try:
            with make_session_factory(engine)() as session:
                rows = session.execute(select(Device.id, Device.state))
                return {row.id: row.state for row in rows}
        finally:
            engine.dispose()

    def ctrl_c(self) -> int:
        """A terminal's Ctrl-C: SIGINT to the whole process group, counters included."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT_S)

    def interrupt(self) -> int:
        """``kill -INT PID`` (what ``./run fresh-check`` does): the demo alone hears it."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT_S)

    def last_changes(self) -> dict[str, tuple[str, str]]:
        """Each counter's last (state, reason) in its history."""
        engine = make_engine(f"sqlite:///{self.demo_dir / 'fleet.sqlite3'}")
        try:
            with make_session_factory(engine)() as session:
                changes = session.scalars(select(StatusChange).order_by(StatusChange.id))
                return {c.device_id: (c.state, c.reason) for c in changes}
        finally:
            engine.dispose()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MQTT_URL", "MQTT_PROTOCOL")}


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_S)
    pytest.fail(f"{what}: not within {timeout_s} s")


def start_demo(cwd: Path) -> Demo:
    output = cwd / f"demo-{time.monotonic_ns()}.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "guichet_cli", "demo", "--port", str(free_port())],
            cwd=cwd,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGINT to it is a Ctrl-C
        )
    demo = Demo(cwd, process, output)
    try:
        wait_until(lambda: "Ctrl-C pour tout arrêter" in demo.text(), START_TIMEOUT_S, "banner")
        wait_until(lambda: set(demo.states().values()) == {"online"}, START_TIMEOUT_S, "online")
    except BaseException:
        stop_demo(demo)
        raise
    return demo


def stop_demo(demo: Demo) -> None:
    if demo.process.poll() is not None:
        return
    try:
        demo.ctrl_c()
    except subprocess.TimeoutExpired:
        os.killpg(demo.process.pid, signal.SIGKILL)
        demo.process.wait()


def counter_pid(demo: Demo, device_id: str) -> int | None:
    """The pid of this demo's counter process, found by its config file."""
    config = str((demo.demo_dir / f"{device_id}.toml").resolve())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if config.encode() in cmdline:
                return int(entry.name)
    return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    stop_demo(running)


# --- the counters' processes and the demo's commands --------------------------------------


def test_press_answers_at_once_and_stop_start_act_on_this_demos_counter(demo: Demo) -> None:
    pressed = demo.command("press", "monts-de-chalus")
    assert pressed.returncode == 0, pressed.stderr
    assert pressed.stdout.startswith("monts-de-chalus : bouton appuyé 0.2 s ; guichet : appel")
    assert demo.command("press", "monts-de-chalus", "--long").returncode == 0  # hangs up

    started = time.monotonic()
    unknown = demo.command("press", "guichet-inconnu")
    assert (unknown.returncode, time.monotonic() - started < AT_ONCE_S) == (2, True)
    assert "Guichet inconnu : guichet-inconnu" in unknown.stderr

    stopped = demo.command("stop", "vallee-de-la-gorre")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "vallee-de-la-gorre arrêté ; « Hors ligne » au tableau de bord.\n"
    assert demo.states()["vallee-de-la-gorre"] == "offline"
    assert counter_pid(demo, "vallee-de-la-gorre") is None
    assert counter_pid(demo, "monts-de-chalus") is not None  # the others go on

    started = time.monotonic()
    offline = demo.command("press", "vallee-de-la-gorre")
    assert (offline.returncode, time.monotonic() - started < AT_ONCE_S) == (1, True)
    assert "vallee-de-la-gorre est arrêté" in offline.stderr

    assert demo.command("start", "vallee-de-la-gorre").returncode == 0
    wait_until(
        lambda: demo.states()["vallee-de-la-gorre"] == "online", START_TIMEOUT_S, "back online"
    )


def test_a_counter_that_dies_is_reported_and_started_again(demo: Demo) -> None:
    pid = counter_pid(demo, "pays-de-la-meteorite")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    said = "Le guichet pays-de-la-meteorite s'est arrêté (tué par le signal SIGKILL) : redémarrage."
    wait_until(lambda: said in demo.text(), 10, "the death reported")
    wait_until(
        lambda: counter_pid(demo, "pays-de-la-meteorite") not in (None, pid),
        START_TIMEOUT_S,
        "a new process",
    )
    # The broker's will said "offline"; the new process says "online" again.
    wait_until(lambda: demo.states()["pays-de-la-meteorite"] == "online", START_TIMEOUT_S, "online")


# --- the broker: what the contract says, nothing more ---------------------------------------


class Subscriber:
    """A paho client that records every message and can fence: a subscription made after the
    others' SUBACK delivers its retained message after all of theirs."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subacks: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, mid, _codes, _p: self.subacks.put(mid)
        host, port = url.removeprefix("mqtt://").split(":")
        self.client.connect(host, int(port))
        self.client.loop_start()

    def subscribe(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        assert self.subacks.get(timeout=FENCE_TIMEOUT_S) == mid

    def until(self, fence: str) -> list[str]:
        """Topics received until the retained message on ``fence`` (subscribed now)."""
        self.subscribe(fence)
        topics = []
        while True:
            topic, _ = self.received.get(timeout=FENCE_TIMEOUT_S)
            if topic == fence:
                return topics
            topics.append(topic)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_an_outside_subscriber_to_status_receives_status_only(demo: Demo) -> None:
    state = read_state(demo.demo_dir)
    assert state is not None
    assert state.broker.startswith("Mosquitto ")
    assert state.mqtt_username is not None
    assert state.mqtt_password is not None
    outside = Subscriber(state.mqtt_url, state.mqtt_username, state.mqtt_password)
    try:
        outside.subscribe("guichet/v1/+/status")
        topics = outside.until(contract.topic("monts-de-chalus", contract.Kind.CONFIG))
    finally:
        outside.close()
    assert sorted(topics) == sorted(contract.topic(i, contract.Kind.STATUS) for i in IDS)


def test_a_counter_receives_its_own_retained_messages_only(demo: Demo) -> None:
    config = tomllib.loads((demo.demo_dir / "monts-de-chalus.toml").read_text())
    state = read_state(demo.demo_dir)
    assert state is not None
    own = Subscriber(state.mqtt_url, config["fleet"]["username"], config["fleet"]["password"])
    own_config = contract.topic("monts-de-chalus", contract.Kind.CONFIG)
    try:
        own.subscribe(contract.topic("monts-de-chalus", contract.Kind.CMD))
        first = own.until(own_config)
        second = own.until(own_config)  # fences whatever the config subscription brought
    finally:
        own.close()
    assert (first, second) == ([], [])


# --- Ctrl-C, then a new run -----------------------------------------------------------------


def test_a_stop_stores_the_counters_offline_and_the_next_run_shows_them_online_anew(
    tmp_path: Path,
) -> None:
    """Whoever hears the signal — the demo alone, or the whole terminal group — the counters'
    "offline" is stored before the server stops: it used to be lost when the demo alone
    heard it, and the next run showed "En ligne depuis 17 min"."""
    first = start_demo(tmp_path)
    assert first.interrupt() == 0
    assert "Démonstration arrêtée." in first.text()
    assert first.states() == dict.fromkeys(IDS, "offline")
    assert first.last_changes() == dict.fromkeys(IDS, ("offline", "shutdown"))
    assert [i for i in IDS if counter_pid(first, i) is not None] == []
    assert read_state(first.demo_dir) is None  # `guichet demo press` now says: not running

    restarted_at = datetime.now(UTC)
    second = start_demo(tmp_path)
    try:
        engine = make_engine(f"sqlite:///{second.demo_dir / 'fleet.sqlite3'}")
        try:
            with make_session_factory(engine)() as session:
                rows = session.execute(select(Device.id, Device.state_since))
                since = {row.id: row.state_since for row in rows}
        finally:
            engine.dispose()
        assert all(at is not None and at >= restarted_at for at in since.values()), since
        assert second.ctrl_c() == 0
        assert second.last_changes() == dict.fromkeys(IDS, ("offline", "shutdown"))
    finally:
        stop_demo(second)
