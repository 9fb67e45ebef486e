"""The counter's MQTT link to the fleet server (aiomqtt over paho-mqtt 2.x).

One connection at a time, client id = device id, MQTT 5 or 3.1.1 as configured, TLS for
``mqtts://``. On every connect the link subscribes to its own ``cmd`` and ``config``
topics, publishes a retained ``status`` "online" (whose last will, left with the broker,
is a retained "offline"), then drains the outbox in order with a bounded window of
in-flight publishes, removing each message after its PUBACK. Telemetry is QoS 0 and sent
directly: when offline it is dropped, the next one follows soon. ``stop()`` publishes a
retained "offline" (reason "shutdown") and disconnects within ``STOP_BUDGET_S``; past
that it cuts the connection (the broker then publishes the last will, "offline" too) and
cancels the session, again and again, for at most ``END_BUDGET_S`` more: a counter being
stopped never hangs on its link.

Lost connections are retried forever with exponential backoff and full jitter between
``fleet.reconnect_min_s`` and ``fleet.reconnect_max_s``. Sessions are clean: commands
sent while the counter is offline are not queued by the broker (the server resends or
gives up); configuration is retained, so the latest one arrives on every connect.
Malformed commands or configurations are logged, counted and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

import aiomqtt

import guichet
from appliance.config import ApplianceConfig
from appliance.errors import ApplianceError
from appliance.fleet.client import (
    CLIENT_TIMEOUT_S,
    PUBLISH_WINDOW,
    describe,
    end_session,
    new_client,
    retrieve_outcome,
    split_link_errors,
    without_cancellation,
)
from appliance.fleet.commands import CommandHandler
from appliance.fleet.outbox import Outbox, OutboxMessage
from appliance.fleet.settings import RuntimeSettings
from appliance.fleet.tls import tls_context
from appliance.supervisor import backoff_delay
from guichet import contract

logger = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 60.0  # a PUBACK this late means a broken link; reconnect and resend
STOP_BUDGET_S = 2.0  # an orderly stop, "offline" included, never takes longer
GOODBYE_TIMEOUT_S = 1.0  # the share of that budget given to the "offline" PUBACK
END_BUDGET_S = 2.0  # then: cut, cancel until the session has ended, or give it up


@dataclass
class LinkStats:
    """Counters for health and metrics (this process only)."""

    connects: int = 0
    acknowledged: int = 0  # outbox messages PUBACKed and removed
    rejected: int = 0  # MQTT 5 PUBACKs with an error code (e.g. not authorised by the ACL)
    telemetry_sent: int = 0
    telemetry_dropped: int = 0
    malformed: int = 0  # cmd/config payloads that did not follow the contract


class _StopRequested(Exception):  # noqa: N818 - a signal inside a TaskGroup, not an error
    pass


class FleetLink:
    """Keeps the counter connected; ``send`` queues QoS 1 messages, telemetry goes direct."""

    def __init__(
        self,
        config: ApplianceConfig,
        outbox: Outbox,
        settings: RuntimeSettings,
        commands: CommandHandler,
        *,
        software_version: str = guichet.__version__,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._settings = settings
        self._commands = commands
        self._version = software_version
        self._device_id = config.device.id
        self.stats = LinkStats()
        self._client: aiomqtt.Client | None = None
        self._tls: ssl.SSLContext | None = None
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._session_task: asyncio.Task[None] | None = None
        # The session's client and tasks, for a stop that has to force its way out.
        self._session_client: aiomqtt.Client | None = None
        self._session_tasks: set[asyncio.Task[None]] = set()
        self._end_now = asyncio.Event()
        self._connected_once = False
        self._announced_interval_s: int | None = None  # in the last status published

    # --- what the rest of the appliance uses ---------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_disconnected(self) -> None:
        await self._disconnected.wait()

    def topic(self, kind: contract.Kind) -> str:
        return contract.topic(self._device_id, kind)

    async def send(self, kind: contract.Kind, message: contract.WireMessage) -> bool:
        """QoS 1 kinds go through the outbox (durable first; True). QoS 0 kinds are sent at
        once, or dropped when offline: True only if the broker got it."""
        spec = contract.KINDS[kind]
        if spec.qos == contract.QOS_AT_MOST_ONCE:
            return await self._send_now(kind, message)
        await self._outbox.append(
            self.topic(kind),
            contract.encode(message),
            spec.qos,
            retain=spec.retained,
        )
        return True

    async def _send_now(self, kind: contract.Kind, message: contract.WireMessage) -> bool:
        client = self._client
        if client is None or not self.connected:
            self.stats.telemetry_dropped += 1
            return False
        try:
            await client.publish(self.topic(kind), contract.encode(message), qos=0)
        except aiomqtt.MqttError as exc:
            self.stats.telemetry_dropped += 1
            logger.debug("telemetry dropped", extra={"error": str(exc)})
            return False
        self.stats.telemetry_sent += 1
        return True

    # --- lifetime ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until ``stop()``."""
        fleet = self._config.fleet
        if fleet.uses_tls and self._tls is None:
            self._tls = await asyncio.to_thread(tls_context, fleet.tls)
        self._finished.clear()
        self._end_now.clear()
        attempt = 0
        try:
            while not self._stop_requested.is_set():
                if await self._one_session():
                    attempt = 0
                if self._stop_requested.is_set():
                    break
                delay = backoff_delay(attempt, fleet.reconnect_min_s, fleet.reconnect_max_s)
                attempt += 1
                logger.info("reconnecting", extra={"in_s": round(delay, 2)})
                try:
                    async with asyncio.timeout(delay):
                        await self._stop_requested.wait()
                except TimeoutError:
                    pass
        finally:
            self._set_connected(False)
            self._finished.set()

    async def stop(self) -> None:
        """Say "offline" and disconnect, within ``STOP_BUDGET_S``; idempotent."""
        self._stop_requested.set()
        task = self._session_task
        if task is not None and not self._connected_once:
            task.cancel()  # no CONNACK yet: nothing to say goodbye with
        try:
            async with asyncio.timeout(STOP_BUDGET_S):
                await self._finished.wait()
        except TimeoutError:
            logger.warning("fleet link slow to stop; cutting the connection")
            self._end_now.set()  # run() ends the session, within END_BUDGET_S
            try:
                async with asyncio.timeout(END_BUDGET_S + 1.0):
                    await self._finished.wait()
            except TimeoutError:
                logger.error("fleet link did not stop")

    async def _one_session(self) -> bool:
        """One connection's life; True if it got connected. Link errors are logged here;
        anything else is a bug and goes up to the supervisor."""
        self._connected_once = False
        task = asyncio.create_task(self._session(), name="fleet-session")
        task.add_done_callback(retrieve_outcome)  # also when given up below
        self._session_task = task
        end_now = asyncio.create_task(self._end_now.wait(), name="fleet-end-now")
        ended = False  # cancelled on purpose: its cancellations are not bugs
        try:
            await asyncio.wait({task, end_now}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                ended = True
                await self._end_session(task)
        except asyncio.CancelledError:
            ended = True
            await self._end_session(task)
            raise
        finally:
            end_now.cancel()
            self._session_task = None
            self._set_connected(False)
        if not task.done():
            return self._connected_once
        if not task.cancelled() and (exc := task.exception()) is not None:
            link_errors, others = split_link_errors(exc)
            if ended and others is not None:
                others = without_cancellation(others)
            if others is not None:
                raise others
            logger.warning("fleet link lost", extra={"error": describe(link_errors)})
        return self._connected_once

    async def _end_session(self, task: asyncio.Task[None]) -> None:
        await end_session(task, self._session_tasks, self._session_client, END_BUDGET_S)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)

    async def _session(self) -> None:
        client = self._new_client()
        self._session_client = client
        try:
            await self._session_with(client)
        finally:
            self._session_client = None

    async def _session_with(self, client: aiomqtt.Client) -> None:
        async with client:
            self._connected_once = True
            self.stats.connects += 1
            await client.subscribe(
                [(self.topic(contract.Kind.CMD), 1), (self.topic(contract.Kind.CONFIG), 1)]
            )
            await self._publish_status(client, contract.Presence.ONLINE, "connected")
            self._client = client
            self._set_connected(True)
            logger.info("fleet link connected", extra={"waiting": self._outbox.count})
            try:
                async with asyncio.TaskGroup() as group:
                    self._track(group.create_task(self._receive(client)))
                    self._track(group.create_task(self._drain(client)))
                    self._track(group.create_task(self._announce_changes(client)))
                    # The stop is raised by the group's body, never by one of its tasks: on
                    # Python 3.11 a task failing once the body has ended leaves this task
                    # with a cancellation request nobody withdraws (CPython gh-116720), and
                    # on Debian 12's 3.11.2 every asyncio.timeout after that raises
                    # CancelledError instead of TimeoutError: the goodbye's PUBACK wait on a
                    # frozen broker ended the session with an error.
                    await self._stop_requested.wait()
                    raise _StopRequested
            except* _StopRequested:
                self._set_connected(False)
                await self._say_goodbye(client)
            finally:
                self._client = None

    def _new_client(self) -> aiomqtt.Client:
        will = contract.last_will(
            self._version,
            self._settings.telemetry_interval_s,
            site=self._config.device.site,
            name=self._config.device.name,
        )
        return new_client(
            self._config.fleet,
            identifier=self._device_id,
            will=aiomqtt.Will(
                self.topic(contract.Kind.STATUS), contract.encode(will), qos=1, retain=True
            ),
            tls=self._tls,
            on_refused=self._note_refused,
        )

    def _note_refused(self) -> None:
        self.stats.rejected += 1

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self._disconnected.clear()
            self._connected.set()
        elif self._connected.is_set():
            self._connected.clear()
            self._disconnected.set()

    # --- while connected -----------------------------------------------------------------

    async def _publish_status(
        self,
        client: aiomqtt.Client,
        state: contract.Presence,
        reason: str,
        puback_within_s: float = CLIENT_TIMEOUT_S,
    ) -> None:
        interval_s = self._settings.telemetry_interval_s
        status = contract.Status.model_validate(
            {
                "state": state,
                "software_version": self._version,
                "at": contract.utcnow(),
                "telemetry_interval_s": interval_s,
                "reason": reason,
                "site": self._config.device.site,
                "name": self._config.device.name,
            }
        )
        await client.publish(
            self.topic(contract.Kind.STATUS),
            contract.encode(status),
            qos=contract.KINDS[contract.Kind.STATUS].qos,
            retain=True,
            timeout=puback_within_s,
        )
        self._announced_interval_s = interval_s

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        try:
            await self._publish_status(
                client, contract.Presence.OFFLINE, "shutdown", puback_within_s=GOODBYE_TIMEOUT_S
            )
        except aiomqtt.MqttError as exc:
            logger.warning("could not say offline", extra={"error": str(exc)})
        else:
            logger.info("fleet link stopped; said offline")

    async def _announce_changes(self, client: aiomqtt.Client) -> None:
        """Republish "online" when the telemetry interval changes: the server's staleness
        check reads it from the status."""
        seen = self._settings.generation
        while True:
            # Compared with what the last status said, not with the value when this task
            # started: a retained config may have changed it in between.
            if self._settings.telemetry_interval_s != self._announced_interval_s:
                await self._publish_status(client, contract.Presence.ONLINE, "connected")
            seen = await self._settings.wait_changed(seen)

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order, ``PUBLISH_WINDOW`` at a time, forever."""
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        cursor = 0
        async with asyncio.TaskGroup() as in_flight:
            while True:
                self._outbox.appended.clear()
                batch = await self._outbox.peek(cursor, PUBLISH_WINDOW)
                if not batch:
                    await self._outbox.appended.wait()
                    continue
                for message in batch:
                    await window.acquire()
                    # Tasks start in creation order and hand their message to paho before
                    # their first await, so the broker receives the outbox's order.
                    self._track(in_flight.create_task(self._publish_one(client, message, window)))
                    cursor = message.seq

    async def _publish_one(
        self, client: aiomqtt.Client, message: OutboxMessage, window: asyncio.Semaphore
    ) -> None:
        try:
            await client.publish(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                timeout=PUBACK_TIMEOUT_S,
            )
        finally:
            window.release()
        await self._outbox.remove(message.seq)
        self.stats.acknowledged += 1

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                await self._dispatch(message.topic.value, payload)
            except contract.ContractError as exc:
                self.stats.malformed += 1
                logger.warning(
                    "malformed message ignored",
                    extra={"topic": message.topic.value, "error": str(exc)[:300]},
                )
            except ApplianceError as exc:
                logger.error("message not handled", extra={"error": str(exc)})

    async def _send_ack(self, ack: contract.CommandAck) -> None:
        await self.send(contract.Kind.CMD_ACK, ack)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        _, kind = contract.parse_topic(topic)
        if kind is contract.Kind.CONFIG:
            if not payload:  # the server cleared its retained config
                return
            config = contract.decode(kind, payload)
            if isinstance(config, contract.DeviceConfig):
                await self._settings.apply(config)
        elif kind is contract.Kind.CMD:
            command = contract.decode(kind, payload)
            if isinstance(command, contract.Command):
                self._commands.start(command, self._send_ack)
        else:
            raise contract.ContractError(f"unexpected topic {topic!r}")
