"""The MQTT client of the fleet link (aiomqtt over paho), built for one session, and how
the link tells a lost connection from a bug.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho_mqtt

from appliance.config import FleetSection

logger = logging.getLogger(__name__)

PUBLISH_WINDOW = 32  # QoS 1 publishes in flight while draining: fills the pipe, bounds memory
CLIENT_TIMEOUT_S = 10.0  # CONNACK / SUBACK / disconnect waits
LINK_ERRORS = (aiomqtt.MqttError, OSError)  # a lost or refused connection (ssl errors too)


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
    client = aiomqtt.Client(
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


def split_link_errors(
    exc: BaseException,
) -> tuple[BaseException | None, BaseException | None]:
    """(the connection errors, everything else) — either may be None."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(LINK_ERRORS)
    return (exc, None) if isinstance(exc, LINK_ERRORS) else (None, exc)


def describe(exc: BaseException | None) -> str:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:300]
