"""The signalling WebSockets: ``/ws/counter`` (call token) and ``/ws/agent`` (session cookie).

Each connection reads messages in order and hands them to the ``CallManager``; what the
manager sends goes through a per-connection outbox drained by one writer task, so a slow
browser never stalls another party. A message that breaks the contract gets an ``error``
and the connection stays up. Refusals are a close right after the handshake:
``4401`` (no or wrong credentials) and ``4403`` (a user who may not take calls, or a page of
another origin); ``4409`` when a newer connection of the same counter replaces this one.
A socket sending faster than ``RATE_PER_S`` (beyond a burst of ``RATE_BURST``) is closed with
``4429``; a frame over the contract's size never gets here (``fleet_server/serving.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.calls import admin as calls_admin
from fleet_server.calls.manager import CallManager
from fleet_server.calls.parties import AgentSession, CounterSession
from fleet_server.calls.store import CounterInfo
from fleet_server.models import Service
from fleet_server.security import auth
from fleet_server.security.roles import Role
from fleet_server.web.deps import AppContext, bearer_token
from guichet import signalling as sig

logger = logging.getLogger(__name__)

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401  # like HTTP 401: no or wrong credentials
CLOSE_FORBIDDEN = 4403  # like HTTP 403: known, but not allowed here
CLOSE_TOO_SLOW = 4408  # the outbox overflowed: the peer does not read
CLOSE_TOO_MANY = 4429  # like HTTP 429: the peer sends faster than any real call needs
OUTBOX_MAX = 256  # messages waiting for a peer before it is dropped as too slow
# A call's signalling is a few dozen messages (offer, answer, ICE candidates) in seconds.
RATE_PER_S = 20.0  # messages per second a socket may keep up
RATE_BURST = 100  # and in one burst


class MessageRate:
    """A token bucket: ``allow()`` is False once the peer outruns it."""

    def __init__(self, rate_per_s: float = RATE_PER_S, burst: int = RATE_BURST) -> None:
        self.rate, self.burst = rate_per_s, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class QueuedLink:
    """A ``calls.Link`` over a Starlette WebSocket: ``send`` never blocks."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._outbox: asyncio.Queue[str | tuple[int, str]] = asyncio.Queue()
        self._closing = False

    def send(self, message: BaseModel) -> None:
        if self._closing:
            return
        if self._outbox.qsize() >= OUTBOX_MAX:
            logger.warning("peer too slow; closing its connection")
            self.close(CLOSE_TOO_SLOW, "trop de messages en attente")
            return
        self._outbox.put_nowait(message.model_dump_json())

    def close(self, code: int, reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._outbox.put_nowait((code, reason))

    async def pump(self) -> None:
        """Write the outbox to the socket until closed (or the peer is gone)."""
        try:
            while True:
                item = await self._outbox.get()
                if isinstance(item, tuple):
                    await self._ws.close(*item)
                    return
                await self._ws.send_text(item)
        except (RuntimeError, OSError, WebSocketDisconnect) as exc:  # the peer went away
            logger.debug("writer stopped: %s", exc)


def _manager(websocket: WebSocket) -> tuple[AppContext, CallManager]:
    ctx: AppContext = websocket.app.state.ctx
    return ctx, ctx.calls


async def _serve(
    websocket: WebSocket,
    link: QueuedLink,
    parse: Callable[[str | bytes], Any],
    handle: Callable[[Any], Awaitable[None]],
) -> None:
    """Read messages until the peer leaves; the caller registered the party beforehand."""
    writer = asyncio.create_task(link.pump(), name="ws-writer")
    rate = MessageRate()
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if not rate.allow():
                logger.warning("peer sends too many messages; closing its connection")
                link.close(CLOSE_TOO_MANY, "trop de messages")
                return
            raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes")
            if raw is None:
                continue
            try:
                message = parse(raw)
            except sig.SignallingError as exc:
                logger.info("message refused: %s", exc)
                link.send(sig.Error(code="bad_message", message=f"Message refusé : {exc}"))
                continue
            await handle(message)
    finally:
        link.close(1000, "")
        try:
            await asyncio.wait_for(writer, timeout=1.0)
        except TimeoutError:
            writer.cancel()


# --- counters ---------------------------------------------------------------------------


def _counter_of(sessions: sessionmaker[Session], token: str | None) -> CounterInfo | None:
    with sessions() as session:
        device = calls_admin.device_for_call_token(session, token)
        if device is None:
            return None
        return CounterInfo(device.id, device.site, device.name or device.id)


@router.websocket("/ws/counter")
async def counter_socket(websocket: WebSocket) -> None:
    ctx, manager = _manager(websocket)
    info = await asyncio.to_thread(_counter_of, ctx.sessions, bearer_token(websocket))
    await websocket.accept()
    if info is None:
        logger.warning("counter refused: missing or wrong call token")
        await websocket.close(CLOSE_UNAUTHORIZED, "jeton d'appel absent ou invalide")
        return
    link = QueuedLink(websocket)
    counter = CounterSession(link, info)
    logger.info("counter connected", extra={"device_id": info.device_id})
    await manager.counter_connected(counter)
    try:
        await _serve(
            websocket,
            link,
            sig.parse_from_counter,
            lambda m: manager.counter_message(counter, m),
        )
    finally:
        await manager.counter_disconnected(counter)
        logger.info("counter disconnected", extra={"device_id": info.device_id})


# --- agents -----------------------------------------------------------------------------


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers always send Origin on a WebSocket: refuse pages of other sites (CSWSH)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc == websocket.headers.get("host", "")


def _agent_of(
    sessions: sessionmaker[Session], cookie: dict[str, Any], watched: str | None
) -> tuple[int, str, bool] | str:
    """(user id, service, may answer) for this session, or why not as a close reason."""
    with sessions() as session:
        user = auth.session_owner(session, cookie)
        if user is None:
            return "connexion requise"
        if user.role == Role.AGENT and user.service:
            if watched and watched != user.service:
                return "réservé aux agents de ce service"
            return user.id, user.service, True
        if user.role == Role.ADMIN and watched and session.get(Service, watched) is not None:
            return user.id, watched, False
        return "réservé aux agents d'un service"


@router.websocket("/ws/agent")
async def agent_socket(websocket: WebSocket) -> None:
    ctx, manager = _manager(websocket)
    watched = websocket.query_params.get("service")
    found = await asyncio.to_thread(_agent_of, ctx.sessions, dict(websocket.session), watched)
    await websocket.accept()
    if not _same_origin(websocket):
        await websocket.close(CLOSE_FORBIDDEN, "origine refusée")
        return
    if isinstance(found, str):
        code = CLOSE_UNAUTHORIZED if found == "connexion requise" else CLOSE_FORBIDDEN
        await websocket.close(code, found)
        return
    user_id, service, can_answer = found
    link = QueuedLink(websocket)
    agent = AgentSession(link, user_id, service, can_answer)
    logger.info("agent connected", extra={"agent_user_id": user_id, "service": service})
    await manager.agent_connected(agent)
    try:
        await _serve(
            websocket, link, sig.parse_from_agent, lambda m: manager.agent_message(agent, m)
        )
    finally:
        await manager.agent_disconnected(agent)
        logger.info("agent disconnected", extra={"agent_user_id": user_id})
