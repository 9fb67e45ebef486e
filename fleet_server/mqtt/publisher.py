"""Messages from the fleet server to counters: commands and retained configurations.

They go out over the ingest's own MQTT connection (one client per server process); paho's
``publish`` is thread-safe, so any thread may call these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from fleet_server.errors import FleetError
from guichet import contract

logger = logging.getLogger(__name__)


class CommandNotSentError(FleetError):
    """A command (or a counter's configuration) could not be handed to the broker."""


class Publisher:
    """Publishes to counters through ``connected()``: the client while it is connected and
    subscribed, else None."""

    def __init__(self, connected: Callable[[], mqtt.Client | None]) -> None:
        self._connected = connected

    def send_command(self, device_id: str, command: contract.Command) -> None:
        """Publish a command to one counter (QoS 1)."""
        self._publish(contract.topic(device_id, contract.Kind.CMD), contract.encode(command), 1)

    def publish_config(self, device_id: str, config: contract.DeviceConfig) -> None:
        """Publish a counter's configuration, retained (QoS 1): it gets the latest one on
        every connect."""
        self._publish(
            contract.topic(device_id, contract.Kind.CONFIG),
            contract.encode(config),
            contract.KINDS[contract.Kind.CONFIG].qos,
            retain=True,
        )

    def _publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        client = self._connected()
        if client is None:
            raise CommandNotSentError("the broker is not connected")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise CommandNotSentError(f"publish failed ({info.rc})")
