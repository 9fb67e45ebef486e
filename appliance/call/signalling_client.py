"""The counter's WebSocket link to the fleet server's ``/ws/counter`` (websockets library).

Authenticated by ``Authorization: Bearer <call token>``; messages follow
``guichet.signalling``. The link is kept up forever: a refused or lost connection is
retried with exponential backoff and full jitter (a fleet of counters that lost the server
together does not come back in lockstep). Keepalive pings detect a silent network loss in
about ``PING_INTERVAL_S + PING_TIMEOUT_S``.

``on_message`` receives every valid server message (the first is ``welcome``);
``on_lost`` is called once each time a link that had been welcomed goes away. ``post()``
queues a message for the current connection; messages queued while disconnected are
dropped at the next connection (the call machine re-sends what still matters: ``resume``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from appliance.supervisor import backoff_delay
from guichet import signalling as sig

logger = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
PING_INTERVAL_S = 5.0  # a dead link is noticed within ~10 s, well inside the resume window
PING_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
AUTH_REFUSED = (401, 403)


class SignallingClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        on_message: Callable[[sig.ServerToCounter], None],
        on_lost: Callable[[], None],
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._on_message = on_message
        self._on_lost = on_lost
        self._min_s = reconnect_min_s
        self._max_s = reconnect_max_s
        self._ssl = ssl_context
        self._outgoing: asyncio.Queue[sig.CounterToServer] = asyncio.Queue()
        self._connection: ClientConnection | None = None
        self.connects = 0

    def post(self, message: sig.CounterToServer) -> None:
        """Queue ``message`` for sending (callable from synchronous code on the loop)."""
        self._outgoing.put_nowait(message)

    async def drop(self) -> None:
        """Close the current connection (it is then re-established as after a loss)."""
        if self._connection is not None:
            await self._connection.close()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                welcomed = await self._session()
            except websockets.InvalidStatus as exc:
                status = exc.response.status_code
                if status in AUTH_REFUSED:
                    logger.error("fleet server refused the call token (HTTP %d)", status)
                    attempt = max(attempt, 32)  # retry rarely: a new token needs a human
                else:
                    logger.warning("fleet server refused the connection (HTTP %d)", status)
                welcomed = False
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                logger.warning("signalling link down: %s", exc)
                welcomed = False
            attempt = 0 if welcomed else attempt + 1
            delay = backoff_delay(attempt, self._min_s, self._max_s)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection, until it closes; True if it got as far as the welcome."""
        welcomed = False
        kwargs: dict[str, Any] = {"ssl": self._ssl} if self._ssl is not None else {}
        async with connect(
            self._url,
            additional_headers={"Authorization": f"Bearer {self._token}"},
            open_timeout=OPEN_TIMEOUT_S,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=sig.MAX_MESSAGE_BYTES,
            proxy=None,
            **kwargs,
        ) as connection:
            self.connects += 1
            self._connection = connection
            _drain(self._outgoing)
            writer = asyncio.create_task(self._write(connection), name="signalling:write")
            try:
                async for raw in connection:
                    message = self._parse(raw)
                    if message is None:
                        continue
                    if isinstance(message, sig.Welcome) and not welcomed:
                        welcomed = True
                        logger.info("signalling link up")
                    self._on_message(message)
            except websockets.ConnectionClosed:
                pass
            finally:
                self._connection = None
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                if welcomed:
                    logger.warning("signalling link lost")
                    self._on_lost()
        return welcomed

    async def _write(self, connection: ClientConnection) -> None:
        while True:
            message = await self._outgoing.get()
            try:
                await connection.send(sig.dump(message))
            except websockets.ConnectionClosed:
                logger.warning("%s not sent: link closed", message.type)
                return

    def _parse(self, raw: str | bytes) -> sig.ServerToCounter | None:
        try:
            return sig.parse_to_counter(raw)
        except sig.SignallingError as exc:
            logger.warning("ignored a server message: %s", exc)
            return None


def _drain(queue: asyncio.Queue[sig.CounterToServer]) -> None:
    while not queue.empty():
        stale = queue.get_nowait()
        logger.debug("dropped %s queued while offline", stale.type)
