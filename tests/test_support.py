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
