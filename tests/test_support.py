"""The test support itself: a private broker starts, stops and starts again."""

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.mosquitto import Broker


def test_private_broker_restarts_on_same_port(tmp_path: Path) -> None:
    b = Broker(workdir=tmp_path)
    b.start()
    port = b.port
    b.stop()
    b.start()
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        assert client.connect("127.0.0.1", port) == mqtt.MQTT_ERR_SUCCESS
        client.disconnect()
    finally:
        b.stop()
    assert b.port == port


def test_broker_refuses_after_stop(tmp_path: Path) -> None:
    b = Broker(workdir=tmp_path)
    b.start()
    b.stop()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    with pytest.raises(ConnectionRefusedError):
        client.connect("127.0.0.1", b.port)


def test_machine_snapshot_names_what_changed(tmp_path: Path) -> None:
    from tests.support import machine

    conf = tmp_path / "cupsd.conf"
    conf.write_text("Listen /run/cups/cups.sock\n")
    backends = tmp_path / "backend"
    backends.mkdir()
    before = machine.snapshot((conf, tmp_path / "absent.conf"), (backends,))
    assert (
        machine.changes(before, machine.snapshot((conf, tmp_path / "absent.conf"), (backends,)))
        == []
    )
    conf.write_text("Listen /run/cups/cups.sock\nJobPrivateAccess default\n")
    (backends / "guichet-test-fail").write_text("#!/bin/sh\n")
    after = machine.snapshot((conf, tmp_path / "absent.conf"), (backends,))
    assert machine.changes(before, after) == sorted([str(conf), f"{backends}/"])


# --- call metrics (tests/support/call_metrics.py) ----------------------------------------


def test_a_freeze_is_a_gap_longer_than_half_a_second_counted_whole() -> None:
    from tests.support.call_metrics import freeze_count, frozen_s

    frames = [0.0, 0.1, 0.2, 1.0, 1.1, 1.5]  # a 0.8 s gap, then a 0.4 s one (not frozen)
    assert frozen_s(frames, 0.0, 1.6) == pytest.approx(0.8)
    assert freeze_count(frames, 1.6) == 1
    assert frozen_s(frames, 0.0, 3.0) == pytest.approx(0.8 + 1.5)  # the end counts too
    assert frozen_s([], 0.0, 2.0) == 2.0  # nothing at all: frozen all along


def test_audio_concealment_is_a_ratio_and_its_longest_stretch() -> None:
    from tests.support.call_metrics import concealment_ratio, longest_concealment_s

    rate = 48_000
    samples = [
        {"t": i * 0.1, "concealed": c, "samples": i * rate // 10}
        for i, c in enumerate([0, 0, 4800, 9600, 14400, 14400, 14500])
    ]
    assert longest_concealment_s(samples) == pytest.approx(0.3)
    assert concealment_ratio(samples) == pytest.approx(14500 / (6 * rate // 10))


def test_private_coturn_keeps_its_files_to_itself(tmp_path: Path) -> None:
    """coturn looks for a log directory, a pid file and a user database in system places
    unless told: the private one writes only in its own directory, and is gone after."""
    import glob
    import socket

    from tests.support.coturn import coturn

    def system_traces() -> set[str]:
        patterns = ("/var/log/turn*", "/var/tmp/turn*", "/tmp/turn*", "/run/turnserver*")
        return {path for pattern in patterns for path in glob.glob(pattern)}

    before = system_traces()
    with coturn(tmp_path / "coturn") as turn:
        pid = turn.process.pid
        port = turn.port
    assert system_traces() == before
    assert {p.name for p in (tmp_path / "coturn").iterdir()} >= {
        "turnserver.conf",
        "turnserver.log",
        "turndb",
        "certs",
    }
    assert turn.process.returncode is not None, f"turnserver {pid} still running"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
