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
