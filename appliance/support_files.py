"""Remote support's files (issue 14, items 2 and 3), the counter's side: the ``screenshot``
and ``fetch_logs`` handlers. Each makes its file, uploads it over HTTPS for the action's
``request_id`` (``appliance/fleet/upload.py``) and only then acks, in French.

A screenshot is refused while a citizen is at the counter — asked before (the call's
state) and checked again by the renderer at the moment it draws (``PRIVATE_SCREENS``): what
a citizen sees during a call, the agent's video and typed lines, is theirs. The logs are the
lines the counter's own logging wrote (``LogSource``), gzip'd; when more than
``UPLOAD_MAX_BYTES``, the oldest are left out and the ack says so.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Callable

from appliance.errors import HardwareError, ScreenshotRefusedError
from appliance.fleet.commands import CommandFailed
from appliance.fleet.upload import Uploader, UploadError
from appliance.hw.ports import Screen, ScreenCapture, ScreenState
from appliance.hw.ports.logs import LogSource
from guichet import contract
from guichet.actions import (
    DEFAULT_LOG_MINUTES,
    LOGS_TYPE,
    MAX_LOG_MINUTES,
    MINUTES_ARG,
    SCREENSHOT_TYPE,
    UPLOAD_MAX_BYTES,
)

logger = logging.getLogger(__name__)

# What the screen shows while a citizen is in a call or just out of it: never captured.
PRIVATE_SCREENS = frozenset(
    {ScreenState.WAITING, ScreenState.IN_CALL, ScreenState.ENDED, ScreenState.SURVEY}
)
IN_CALL_REFUSAL = "refusé : pas de capture d'écran pendant un appel ({doing})"
NO_SERVER = "pas de serveur d'appel configuré : rien à envoyer (voir [call] server_url)"

Busy = Callable[[], str | None]


class SupportFiles:
    """The two handlers for one running counter (``RemoteActions`` registers them)."""

    def __init__(
        self,
        *,
        screen: Screen | None,
        logs: LogSource | None,
        uploader: Uploader | None,
        busy: Busy,
    ) -> None:
        self._screen = screen
        self._logs = logs
        self._uploader = uploader
        self._busy = busy

    async def screenshot(self, command: contract.Command) -> str:
        if (doing := self._busy()) is not None:
            raise CommandFailed(IN_CALL_REFUSAL.format(doing=doing))
        screen = self._screen
        if not isinstance(screen, ScreenCapture):
            raise CommandFailed("cet écran ne permet pas de capture")
        uploader = self._need_uploader()
        try:
            png = await asyncio.to_thread(screen.png, refuse=PRIVATE_SCREENS)
        except ScreenshotRefusedError:
            raise CommandFailed(IN_CALL_REFUSAL.format(doing="écran d'appel affiché")) from None
        except HardwareError as exc:
            raise CommandFailed(f"capture impossible : {exc}") from None
        if len(png) > UPLOAD_MAX_BYTES:
            raise CommandFailed(f"capture trop volumineuse ({len(png) // 1024} Ko)")
        await self._send(uploader, command, SCREENSHOT_TYPE, png)
        return f"capture d'écran envoyée ({_kb(len(png))})"

    async def fetch_logs(self, command: contract.Command) -> str:
        minutes = _minutes(command)
        if self._logs is None:
            raise CommandFailed("journaux indisponibles sur ce guichet")
        uploader = self._need_uploader()
        try:
            lines = await self._logs.recent(minutes)
        except HardwareError as exc:
            raise CommandFailed(str(exc)) from None
        body, kept = await asyncio.to_thread(_pack, lines)
        await self._send(uploader, command, LOGS_TYPE, body)
        left_out = len(lines) - kept
        said = f"{kept} ligne(s) de journal des {minutes} dernières minutes envoyées"
        return said + (f" ({left_out} plus anciennes laissées de côté)" if left_out else "")

    def _need_uploader(self) -> Uploader:
        if self._uploader is None:
            raise CommandFailed(NO_SERVER)
        return self._uploader

    async def _send(
        self, uploader: Uploader, command: contract.Command, media_type: str, body: bytes
    ) -> None:
        try:
            await uploader.put(command.request_id, media_type, body)
        except UploadError as exc:
            raise CommandFailed(str(exc)) from None


def _pack(lines: list[str]) -> tuple[bytes, int]:
    """The newest lines that fit ``UPLOAD_MAX_BYTES`` once gzip'd, and how many they are."""
    kept = lines
    while True:
        body = gzip.compress("".join(line + "\n" for line in kept).encode(), compresslevel=6)
        if len(body) <= UPLOAD_MAX_BYTES or not kept:
            return body, len(kept)
        kept = kept[len(kept) // 2 :]


def _minutes(command: contract.Command) -> int:
    value = command.args.get(MINUTES_ARG, DEFAULT_LOG_MINUTES)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LOG_MINUTES:
        raise CommandFailed(f"argument « {MINUTES_ARG} » : entier de 1 à {MAX_LOG_MINUTES} attendu")
    return value


def _kb(size: int) -> str:
    return f"{max(1, round(size / 1024))} Ko"
