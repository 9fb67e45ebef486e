"""The real fleet app served by uvicorn on a loopback port, inside the test's own event loop,
with helpers to log in over HTTP and open signalling WebSockets (``websockets`` client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidState

from fleet_server.app import create_app
from fleet_server.calls import admin as calls_admin
from fleet_server.db import make_engine, make_session_factory
from fleet_server.models import Device
from fleet_server.security import auth
from fleet_server.serving import uvicorn_config
from fleet_server.web.deps import AppContext
from tests.support.databases import migrate_fresh
from tests.support.mosquitto import free_port
from tests.support.webapp import CSRF_RE, PASSWORD, test_settings

WAIT_S = 10.0


@dataclass
class LiveApp:
    url: str
    ws_url: str
    sessions: sessionmaker[Session]
    ctx: AppContext
    app: FastAPI  # e.g. for ``app.dependency_overrides`` (a pinned clock)
    port: int = 0

    def ws_url_at(self, host: str) -> str:
        """The WebSocket base URL as reached at ``host`` (the server must listen there)."""
        return f"{self.ws_url.split(':', 1)[0]}://{host}:{self.port}"

    def add_user(self, username: str, role: str = "agent", service: str | None = "caf") -> None:
        with self.sessions.begin() as session:
            auth.upsert_user(session, username, PASSWORD, role=role, service=service)

    def add_counter(self, device_id: str, site: str, name: str, service: str = "caf") -> str:
        """A counter row with its service; returns its new call token."""
        with self.sessions.begin() as session:
            session.add(Device(id=device_id, site=site, name=name, service=service))
        with self.sessions() as session:
            return calls_admin.new_call_token(session, device_id)

    async def login(self, username: str) -> httpx.AsyncClient:
        """An HTTP client holding ``username``'s session cookie (close it after use)."""
        client = httpx.AsyncClient(base_url=self.url)
        page = await client.get("/login")
        match = CSRF_RE.search(page.text)
        assert match, "no CSRF token on /login"
        data = {"username": username, "password": PASSWORD, "csrf_token": match.group(1)}
        response = await client.post("/login", data=data)
        assert response.status_code == 303, response.text
        return client

    def counter_socket(self, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return connect(self.ws_url + "/ws/counter", additional_headers=headers)

    def agent_socket(
        self, client: httpx.AsyncClient | None, query: str = "", **headers: str
    ) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items()) if client else ""
        extra = {"Cookie": cookie} if cookie else {}
        return connect(self.ws_url + "/ws/agent" + query, additional_headers=extra | headers)


async def receive(ws: ClientConnection, kind: str, *, skip: tuple[str, ...] = ("queue",)) -> Any:
    """The next message of type ``kind`` (as a dict), skipping only the types in ``skip``."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message
            assert message["type"] in skip, f"expected {kind}, got {message}"


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


@asynccontextmanager
async def live_app(
    db_url: str, *, host: str = "127.0.0.1", tls: Path | None = None, **overrides: Any
) -> AsyncIterator[LiveApp]:
    """The app served on ``host`` (e.g. "0.0.0.0" for a shaped network's counter); its
    ``url`` and ``ws_url`` stay on 127.0.0.1, for the browser and the tests.

    With ``tls`` (a directory made by ``image.enrol_rig.make_pki``) it speaks HTTPS/WSS with
    that directory's server certificate: the counter refuses plain ``ws://`` to anything
    but a loopback address."""
    await asyncio.to_thread(migrate_fresh, db_url)
    app = create_app(test_settings(db_url, **overrides))
    port = free_port()
    # Served as ``guichet fleet serve`` serves it (no uvicorn proxy headers, frame limits).
    certificates: dict[str, Any] = {}
    if tls is not None:
        certificates = {
            "ssl_certfile": str(tls / "server.pem"),
            "ssl_keyfile": str(tls / "server.key"),
        }
    config = uvicorn_config(app, host=host, port=port, log_level="warning", **certificates)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT_S):
        while not server.started:  # uvicorn offers no event to wait on
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
    engine = make_engine(db_url)
    try:
        yield LiveApp(
            f"{'https' if tls else 'http'}://127.0.0.1:{port}",
            f"{'wss' if tls else 'ws'}://127.0.0.1:{port}",
            make_session_factory(engine),
            app.state.ctx,
            app,
            port,
        )
    finally:
        server.should_exit = True
        # uvicorn 0.55's sans-I/O WebSocket shutdown sends a close frame on a connection whose
        # client is closing it at that very moment, and websockets refuses: a race of the
        # server's teardown (seen once in CI's suite), not of what a test checks.
        with contextlib.suppress(InvalidState):
            await serving
        engine.dispose()
        assert app.state.ctx.calls.task_errors == []
