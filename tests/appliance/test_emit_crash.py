"""Events are on disk before the code that emitted them goes on (issue 12, finding 14).

A real counter process emits ``call_ended`` events and records survey answers in a burst,
and says so once each call has returned; it is SIGKILLed at random points, ten times.
Every event and answer it announced — and the ``counter_started`` of every run that got
going — must reach the broker once a last run drains the outbox (a message whose PUBACK
was lost may come twice: the server stores it once, by its id).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from guichet import contract
from tests.appliance.mqtt_observer import Observer
from tests.support.mosquitto import Broker

DEVICE = "guichet-crash"
EVENTS = contract.topic(DEVICE, contract.Kind.EVENT)
SURVEYS = contract.topic(DEVICE, contract.Kind.SURVEY)
REPO = Path(__file__).resolve().parents[2]
KILLS = 10
MAX_BEFORE_KILL = 300  # "emitted" lines read before a SIGKILL, at random up to this
DRAIN_TIMEOUT_S = 60.0


def config(tmp_path: Path, broker: Broker) -> Path:
    path = tmp_path / "counter.toml"
    path.write_text(
        f"""
[device]
id = "{DEVICE}"
site = "Essai"
data_dir = "{tmp_path / "data"}"

[fleet]
mqtt_url = "{broker.url}"
keepalive_s = 5
telemetry_interval_s = 3600
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[hardware]
system = "simulated"
"""
    )
    return path


def start(config_path: Path, run: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.emitting_counter", str(config_path), str(run)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def announced_until_killed(child: subprocess.Popen[str], emitted_before_kill: int) -> list[int]:
    """Read until ``ready`` and that many ``emitted`` lines, SIGKILL, return the numbers."""
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    seqs = []
    for line in child.stdout:
        seqs.append(int(line.split()[1]))
        if len(seqs) >= emitted_before_kill:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    return seqs


def collect(observer: Observer, into: list[dict[str, Any]], timeout: float) -> None:
    try:
        seen = observer.messages.get(timeout=timeout)
    except queue.Empty:
        return
    into.append(json.loads(seen.payload))


@pytest.mark.slow
def test_sigkill_after_emit_loses_no_event(broker: Broker, tmp_path: Path) -> None:
    rng = random.Random(12)
    observer = Observer(broker.port, [EVENTS, SURVEYS])
    observer.start()
    observer.wait_subscribed()
    path = config(tmp_path, broker)
    announced: set[tuple[int, int]] = set()  # (run, seq) of every emit that returned
    events: list[dict[str, Any]] = []
    try:
        for run in range(KILLS):
            seqs = announced_until_killed(start(path, run), rng.randint(1, MAX_BEFORE_KILL))
            announced |= {(run, s) for s in seqs}
        # A last run, killed once the outbox has given everything to the broker.
        last = start(path, KILLS)
        assert last.stdout is not None
        assert last.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not announced <= ended(events) & answered(events):
            collect(observer, events, 1.0)
        last.send_signal(signal.SIGKILL)
        last.wait()
        last.stdout.close()
        while not observer.messages.empty():
            collect(observer, events, 0)
    finally:
        observer.stop()
    started = {e["id"] for e in events if e.get("kind") == "counter_started"}
    assert len(started) == KILLS + 1  # even a run killed at once had said it started
    missing = announced - ended(events)
    assert not missing, f"{len(missing)} of {len(announced)} events lost"
    unanswered = announced - answered(events)
    assert not unanswered, f"{len(unanswered)} of {len(announced)} survey answers lost"


def ended(events: list[dict[str, Any]]) -> set[tuple[int, int]]:
    return {
        (e["data"]["run"], e["data"]["seq"])
        for e in events
        if e.get("kind") == "call_ended" and e["data"]["run"] < KILLS
    }


def answered(messages: list[dict[str, Any]]) -> set[tuple[int, int]]:
    return {
        (m["answers"]["run"], m["answers"]["seq"])
        for m in messages
        if "answers" in m and m["answers"]["run"] < KILLS
    }
