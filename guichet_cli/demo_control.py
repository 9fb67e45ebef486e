"""The running demo's control socket: how ``guichet demo stop|start COUNTER`` (and ``press``,
asking whether a counter runs) reach the demo that owns the counter processes.

A Unix socket in the demo's own directory (``var/demo/control.sock``, 0600), so the command
acts on *this* demo's counter and on nothing else on a shared machine — ``pkill -f`` on a
config name, which the README used to suggest, matched every demo's. One JSON line each
way: ``{"action": "stop", "counter": "monts-de-chalus"}`` → ``{"ok": true, "message": …}``,
the message in French for the person at the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0  # a client that says nothing is dropped
ANSWER_TIMEOUT_S = 30.0  # stopping a counter and seeing its "offline" stored takes seconds
MAX_LINE_BYTES = 4096

Action = Literal["ping", "status", "stop", "start"]


class ControlRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    counter: str | None = Field(default=None, max_length=64)


class ControlReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    ok: bool
    message: str = ""
    running: bool | None = None  # "status": whether the counter's process runs


Handler = Callable[[ControlRequest], Awaitable[ControlReply]]


async def serve_control(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on ``path`` (a previous run's socket file is replaced)."""
    await asyncio.to_thread(path.unlink, missing_ok=True)
    server = await asyncio.start_unix_server(partial(_client, handler), path=str(path))
    await asyncio.to_thread(path.chmod, 0o600)
    return server


async def _client(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
            reply = await handler(ControlRequest.model_validate_json(line[:MAX_LINE_BYTES]))
        except (TimeoutError, ValueError, ValidationError):
            reply = ControlReply(ok=False, message="requête illisible")
        writer.write(reply.model_dump_json().encode() + b"\n")
        await writer.drain()
    except ConnectionError:
        logger.info("control client left early")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def ask(
    path: Path, action: Action, counter: str | None = None, *, timeout_s: float = ANSWER_TIMEOUT_S
) -> ControlReply | None:
    """Ask the demo listening on ``path``; None when no demo answers there."""
    request = ControlRequest(action=action, counter=counter).model_dump_json().encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(request)
            with sock.makefile("rb") as answer:
                line = answer.readline(MAX_LINE_BYTES)
    except OSError:  # no socket, nobody listening, or no answer in time
        return None
    try:
        return ControlReply.model_validate_json(line)
    except ValidationError:
        return None
