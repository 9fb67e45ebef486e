"""The MQTT client of the fleet link (aiomqtt over paho), built for one session, and how
the link tells a lost connection from a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import aiomqtt
import paho.mqtt.client as paho_mqtt

from appliance.config import FleetSection

logger = logging.getLogger(__name__)

RECANCEL_EVERY_S = 0.1  # a session that will not end is cancelled again this often

PUBLISH_WINDOW = 32  # QoS 1 publishes in flight while draining: fills the pipe, bounds memory
CLIENT_TIMEOUT_S = 10.0  # CONNACK / SUBACK / disconnect waits
LINK_ERRORS = (aiomqtt.MqttError, OSError)  # a lost or refused connection (ssl errors too)

T = TypeVar("T")


class _Client(aiomqtt.Client):
    """aiomqtt's client, whose waits never swallow a cancellation.

    aiomqtt waits for every CONNACK, SUBACK, PUBACK and for the disconnection with
    ``asyncio.wait_for``. Up to Python 3.11, ``wait_for`` returns normally instead of
    raising ``CancelledError`` when the task is cancelled just as the awaited thing
    completes (CPython issue 86296; rewritten on ``asyncio.timeout`` in 3.12). A link task
    cancelled by ``stop()`` as its PUBACK arrived then carried on, and waited forever.
    ``asyncio.timeout`` has the 3.12 semantics: a cancellation always gets through.
    """

    async def _wait_for(
        self,
        fut: Awaitable[T],
        timeout: float | None,  # noqa: ASYNC109 - aiomqtt's signature, overridden
    ) -> T:
        if timeout is None:
            timeout = self.timeout
        try:
            async with asyncio.timeout(None if timeout == math.inf else timeout):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None


def new_client(
    fleet: FleetSection,
    *,
    identifier: str,
    will: aiomqtt.Will,
    tls: ssl.SSLContext | None,
    on_refused: Callable[[], None],
) -> aiomqtt.Client:
    """A client for one session; ``on_refused`` runs for each MQTT 5 PUBACK with an error."""
    v5 = fleet.protocol == "5"
    client = _Client(
        fleet.host,
        fleet.port,
        username=fleet.username,
        password=fleet.password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=will,
        clean_session=None if v5 else True,
        clean_start=True if v5 else paho_mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        keepalive=fleet.keepalive_s,
        timeout=CLIENT_TIMEOUT_S,
        max_inflight_messages=PUBLISH_WINDOW,
        tls_context=tls,
        logger=logging.getLogger("appliance.fleet.link.mqtt"),
    )
    _watch_pubacks(client, on_refused)
    return client


def _watch_pubacks(client: aiomqtt.Client, on_refused: Callable[[], None]) -> None:
    """Count MQTT 5 PUBACKs carrying an error (aiomqtt treats every PUBACK as success)."""
    paho = client._client
    inner = cast("Callable[..., None] | None", paho.on_publish)
    if inner is None:
        return

    def on_publish(c: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            on_refused()
            logger.error("broker refused a message", extra={"reason": str(reason)})
        inner(c, userdata, mid, reason, props)

    paho.on_publish = on_publish


def cut(client: aiomqtt.Client) -> None:
    """Drop the connection without a DISCONNECT, so the broker publishes the last will.
    paho notices on its next read and closes its side; every wait on the client ends."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket):  # ssl.SSLSocket too; None once closed
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def split_link_errors(
    exc: BaseException,
) -> tuple[BaseException | None, BaseException | None]:
    """(the connection errors, everything else) — either may be None."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(LINK_ERRORS)
    return (exc, None) if isinstance(exc, LINK_ERRORS) else (None, exc)


def without_cancellation(exc: BaseException) -> BaseException | None:
    """``exc`` less the cancellations in it (None if nothing else): what is left of a
    session that was cancelled on purpose, e.g. in the middle of its goodbye."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(
            lambda e: not isinstance(e, asyncio.CancelledError | BaseExceptionGroup)
        )
    return None if isinstance(exc, asyncio.CancelledError) else exc


def describe(exc: BaseException | None) -> str:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:300]


async def end_session(
    task: asyncio.Task[None],
    children: set[asyncio.Task[None]],
    client: aiomqtt.Client | None,
    budget_s: float,
) -> None:
    """Cut the connection and cancel the session and its tasks until it has ended, for at
    most ``budget_s``; then give it up. Cancelling the session once is not enough: a task
    may swallow its cancellation, and while a TaskGroup is aborting (Python 3.11) it passes
    no further cancellation on to its tasks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    if client is not None:
        cut(client)
    while not task.done():
        task.cancel()
        for child in list(children):
            child.cancel()
        left = deadline - loop.time()
        if left <= 0:
            logger.error("fleet session does not end; given up")
            return
        await asyncio.wait({task}, timeout=min(RECANCEL_EVERY_S, left))


def retrieve_outcome(task: asyncio.Task[None]) -> None:
    """Mark a session's exception as seen: a given-up session ends with nobody waiting."""
    if not task.cancelled():
        task.exception()
