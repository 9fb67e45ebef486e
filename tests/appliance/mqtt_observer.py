"""A plain paho client that watches a broker for the tests (its own network thread).

It plays the fleet server's part: sees what a counter publishes, and publishes commands
and configurations to it. Tests wait on its messages with timeouts, never with sleeps.
Every message is queued twice: once for ``next()`` (all topics, in arrival order) and once
for ``next_on(topic)`` (that topic only), so waiting on one topic loses no other.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

WAIT_S = 10.0


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool


class Observer:
    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str | None = None,
        persistent: bool = False,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    ) -> None:
        self.port = port
        self.topics = topics
        self.messages: queue.Queue[Seen] = queue.Queue()
        self._by_topic: dict[str, queue.Queue[Seen]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"observer-{uuid.uuid4().hex[:8]}",
            clean_session=not persistent if protocol != MQTTProtocolVersion.MQTTv5 else None,
            protocol=protocol,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        self._subscribed.clear()
        client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, *_: Any) -> None:
        self._subscribed.clear()

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        seen = Seen(message.topic, bytes(message.payload), bool(message.retain))
        self.messages.put(seen)
        self._topic_queue(seen.topic).put(seen)

    def _topic_queue(self, topic: str) -> queue.Queue[Seen]:
        with self._lock:
            return self._by_topic.setdefault(topic, queue.Queue())

    def start(self) -> Observer:
        self._client.connect("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            raise TimeoutError("observer not subscribed")
        return self

    def wait_subscribed(self, timeout: float = WAIT_S) -> None:
        if not self._subscribed.wait(timeout):
            raise TimeoutError("observer not subscribed again")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    async def next(self, timeout: float = WAIT_S) -> Seen:
        """The next message on any topic."""
        return await _get(self.messages, timeout)

    async def next_on(self, topic: str, timeout: float = WAIT_S) -> Seen:
        """The next message on ``topic`` (messages on other topics stay available)."""
        return await _get(self._topic_queue(topic), timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)


async def _get(source: queue.Queue[Seen], timeout: float) -> Seen:
    try:
        return await asyncio.to_thread(source.get, True, timeout)
    except queue.Empty:
        raise TimeoutError(f"no message within {timeout} s") from None
