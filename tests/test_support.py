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
