"""Remote support's files to the fleet server over HTTPS (issue 14, items 2 and 3): a
screenshot or the logs, ``PUT`` to ``guichet.actions.UPLOAD_PATH`` for the action that asked
(its ``request_id``), with the counter's own call token — the credential its ``/ws/counter``
uses, on the same server and with the same CA (``[fleet.tls]``). Not through MQTT: the broker
carries small messages, and a file has no business in its queues.

The server is the call's (``[call] server_url``, ``wss://`` → ``https://``): a counter
without calls has no token for it, and cannot upload. Blocking urllib in a thread; the token
is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

from appliance.config import ApplianceConfig
from appliance.errors import ApplianceError
from appliance.fleet.tls import https_context
from guichet.actions import UPLOAD_PATH

logger = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S = 60.0  # 4 MB at a rural line's ~1 Mbit/s upstream takes ~35 s


class UploadError(ApplianceError):
    """The file did not reach the server; ``str(exc)`` says why, in French."""


class Uploader:
    """Uploads one file for one action; ``None`` from ``of`` when the counter has no server."""

    def __init__(self, base_url: str, device_id: str, token: str, context: ssl.SSLContext) -> None:
        self._base = base_url.rstrip("/")
        self._device_id = device_id
        self._token = token
        self._context = context

    @classmethod
    def of(cls, config: ApplianceConfig) -> Uploader | None:
        call = config.call
        if call.server_url is None or call.token is None:
            return None
        parts = urlsplit(call.server_url)
        scheme = "https" if parts.scheme == "wss" else "http"  # ws:// only to loopback (config)
        base = urlunsplit((scheme, parts.netloc, "", "", ""))
        return cls(base, config.device.id, call.token, https_context(config.fleet.tls))

    async def put(self, request_id: uuid.UUID, media_type: str, body: bytes) -> None:
        await asyncio.to_thread(self._put, request_id, media_type, body)

    def _put(self, request_id: uuid.UUID, media_type: str, body: bytes) -> None:
        path = UPLOAD_PATH.format(device_id=self._device_id, request_id=request_id)
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by the config
            self._base + path,
            data=body,
            method="PUT",
            headers={
                "Content-Type": media_type,
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=UPLOAD_TIMEOUT_S, context=self._context
            ) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise UploadError(
                f"envoi refusé par le serveur ({exc.code}) : {_detail(exc)}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UploadError(f"serveur injoignable : {exc}") from None
        logger.info(
            "support file uploaded", extra={"request_id": str(request_id), "bytes": len(body)}
        )


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("detail", ""))[:200]
    except ValueError:
        return ""
