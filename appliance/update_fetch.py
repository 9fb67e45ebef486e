"""Fetching an update bundle from the fleet server (issue 13, docs/updates.md): HTTPS with the
counter's own broker credentials as basic authentication, into the data partition (a bundle is
hundreds of megabytes: never RAM), resumed with ``Range`` after a cut, checked against the
order's size and SHA-256.

Blocking urllib, run in a thread (``asyncio.to_thread``); the bytes fetched so far reach the
loop through ``loop.call_soon_threadsafe``. Errors are ``FetchError`` with a French sentence.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
HTTP_TIMEOUT_S = 60.0  # one read; a rural line stalls, it does not take a minute per MiB
ATTEMPTS = 6  # cuts survived in one order; each resumes where the last one stopped
RETRY_PAUSE_S = (2.0, 5.0, 15.0, 30.0, 60.0)
SPACE_MARGIN_BYTES = 64 * 1024 * 1024  # the outbox and the journal live there too


class FetchError(ApplianceError):
    """The bundle could not be fetched or is not the one ordered; French, for the fleet."""


@dataclass(frozen=True)
class Fetch:
    url: str
    dest: Path
    size: int
    sha256: str
    username: str | None
    password: str | None
    context: ssl.SSLContext
    pauses: tuple[float, ...] = RETRY_PAUSE_S  # before each resumption, the last one repeated


def fetch_bundle(fetch: Fetch, fetched: Callable[[int], None]) -> None:
    """Blocking: fetch ``fetch.url`` into ``fetch.dest`` (resuming what is there), then check
    it. ``fetched(n)`` is called with the bytes on disk so far."""
    fetch.dest.parent.mkdir(parents=True, exist_ok=True)
    have = fetch.dest.stat().st_size if fetch.dest.exists() else 0
    if have > fetch.size:
        fetch.dest.unlink()
        have = 0
    free = shutil.disk_usage(fetch.dest.parent).free
    if free < fetch.size - have + SPACE_MARGIN_BYTES:
        raise FetchError(
            f"Place insuffisante sur la carte SD : {free // 2**20} Mo libres,"
            f" {(fetch.size - have) // 2**20} Mo à télécharger."
        )
    for attempt in range(ATTEMPTS):
        if have >= fetch.size:
            break
        try:
            have = _fetch_from(fetch, have, fetched)
        except FetchError:
            raise
        except (OSError, urllib.error.URLError) as exc:  # a cut: resume after a pause
            logger.warning("bundle download cut", extra={"error": str(exc), "have": have})
            have = fetch.dest.stat().st_size if fetch.dest.exists() else 0
            if attempt + 1 < ATTEMPTS:
                time.sleep(fetch.pauses[min(attempt, len(fetch.pauses) - 1)])
    if have < fetch.size:
        raise FetchError("Téléchargement interrompu trop souvent ; nouvel essai au prochain ordre.")
    if have != fetch.size or _sha256(fetch.dest) != fetch.sha256:
        fetch.dest.unlink(missing_ok=True)
        raise FetchError("Paquet corrompu : son empreinte SHA-256 n'est pas celle annoncée.")


def _fetch_from(fetch: Fetch, have: int, fetched: Callable[[int], None]) -> int:
    request = urllib.request.Request(fetch.url)  # noqa: S310 - https only (UpdateOrder)
    if fetch.username is not None and fetch.password is not None:
        pair = f"{fetch.username}:{fetch.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(  # noqa: S310
            request, timeout=HTTP_TIMEOUT_S, context=fetch.context
        )
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise FetchError("Le serveur a refusé les identifiants du guichet.") from None
        if exc.code == 404:
            raise FetchError("Le paquet n'est plus sur le serveur.") from None
        if exc.code == 416:  # nothing past what we have: start again
            fetch.dest.unlink(missing_ok=True)
            return 0
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: from the start
            have = 0
        with fetch.dest.open("ab" if have else "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                have += len(chunk)
                if have > fetch.size:
                    raise FetchError("Le paquet est plus grand que celui annoncé.")
                fetched(have)
            out.flush()
    return have


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()
