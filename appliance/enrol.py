"""Enrolment on the counter's side: hardware identity, asking to join, storing credentials.

The counter presents its enrolment token, id and hardware identity to the fleet server's
``POST /api/v1/enrol``, then polls ``/api/v1/enrol/collect`` with the poll secret it got
until an administrator approves — for as long as that takes. The pending request (its poll
secret, the hash of the token it was made with, its short code) is written owner-only (0600)
to ``<data_dir>/enrolment-pending.json`` at once, so a restart or a power cut goes on polling
the same request instead of spending the token again; a different token in the
configuration drops it. A request the server no longer knows (expired) is replaced by a new
one. The credentials (broker username and password, call token) are written owner-only to
``<data_dir>/credentials.json`` and override the TOML's.

A refusal (token invalid, expired or used up; request rejected) is final for this token:
``EnrolmentRefusedError`` carries the French message for the technician. A fleet server
that cannot be reached is retried, with a growing pause. Progress is reported through a
callback (``EnrolmentStatus``): the screen and the card say it (``appliance/enrol_wait.py``).
HTTP is blocking urllib, run in a thread; no secret is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from appliance.config import ApplianceConfig
from appliance.fleet.tls import https_context
from guichet.enrolment_code import poll_digest, short_code
from guichet.errors import EnrolmentError as EnrolmentError  # re-exported: enrol.EnrolmentError

logger = logging.getLogger(__name__)

CREDENTIALS_FILE: Final = "credentials.json"
PENDING_FILE: Final = "enrolment-pending.json"
POLL_INTERVAL_S: Final = 10.0  # an administrator approves within minutes or hours; cheap to ask
RETRY_MIN_S: Final = 5.0  # fleet server unreachable: first pause, doubled up to …
RETRY_MAX_S: Final = 120.0  # … this (a town hall's network may come up long after the counter)
HTTP_TIMEOUT_S: Final = 15.0
WHAT_TO_DO: Final = (
    "Demandez un nouveau jeton au Pays, écrivez-le dans guichet.toml ([flotte] jeton)"
    " depuis un ordinateur, puis redémarrez le guichet."
)
SERIAL_SOURCES: Final = (
    Path("/sys/firmware/devicetree/base/serial-number"),  # Raspberry Pi (and other DT boards)
    Path("/proc/cpuinfo"),  # "Serial : 10000000abcdef01" on older Raspberry Pi kernels
    Path("/etc/machine-id"),  # anything else: stable per installation, not per board
)
NO_SERIAL: Final = {"", "0000000000000000"}


class StoredCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str
    broker_username: str
    broker_password: str
    call_token: str

    def __repr__(self) -> str:  # never print the secrets by accident
        return f"StoredCredentials(device_id={self.device_id!r})"

    __str__ = __repr__


class PendingRequest(BaseModel):
    """A request filed and not yet collected: what a restart needs to go on polling it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_sha256: str  # the token it was made with: another token drops it
    poll_secret: str
    code: str  # the short code shown on the screen and beside the request on the dashboard
    requested_at: datetime

    def __repr__(self) -> str:  # never print the poll secret by accident
        return f"PendingRequest(code={self.code!r}, requested_at={self.requested_at})"

    __str__ = __repr__


class EnrolmentRefusedError(EnrolmentError):
    """The fleet server said no for good (token or request); ``str()`` is the French message
    for the technician, with what to do."""


class FleetUnreachableError(EnrolmentError):
    """The fleet server could not be reached or failed (network, DNS, TLS, 5xx): try again."""


class RequestGoneError(EnrolmentError):
    """The server no longer knows the pending request (expired, or its secret refused)."""


@dataclass(frozen=True)
class EnrolmentStatus:
    """Where enrolment stands, for the screen: ``message`` is French (``unreachable``,
    ``refused``), ``code`` the request's short code (``pending``)."""

    step: Literal["asking", "pending", "unreachable", "refused", "enrolled"]
    code: str = ""
    message: str = ""


Report = Callable[[EnrolmentStatus], None]


def hardware_identity(sources: Sequence[Path] = SERIAL_SOURCES) -> str:
    """The board's serial number (Raspberry Pi), else the machine-id, prefixed by its kind."""
    for path in sources:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.name == "cpuinfo":
            lines = [ln for ln in text.splitlines() if ln.lower().startswith("serial")]
            value = lines[0].partition(":")[2].strip() if lines else ""
        else:
            value = text.strip("\x00 \n")
        if value not in NO_SERIAL:
            kind = "machine-id" if path.name == "machine-id" else "serial"
            return f"{kind}:{value}"
    raise EnrolmentError("no hardware identity: no serial number and no /etc/machine-id")


def credentials_path(config: ApplianceConfig) -> Path:
    return config.device.data_dir / CREDENTIALS_FILE


def load_credentials(config: ApplianceConfig) -> StoredCredentials | None:
    path = credentials_path(config)
    try:
        return StoredCredentials.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise EnrolmentError(f"{path}: unreadable credentials") from exc


def save_credentials(config: ApplianceConfig, creds: StoredCredentials) -> Path:
    """Write owner-only (0600) and atomically: a power cut leaves the old file or the new."""
    path = credentials_path(config)
    _write_private(path, creds.model_dump_json().encode())
    return path


def pending_path(config: ApplianceConfig) -> Path:
    return config.device.data_dir / PENDING_FILE


def load_pending(config: ApplianceConfig) -> PendingRequest | None:
    """The stored pending request, or None (a damaged file is dropped: a new request is
    filed, as after a lost one)."""
    path = pending_path(config)
    try:
        return PendingRequest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        logger.warning("pending enrolment request unreadable; dropped", extra={"path": str(path)})
        path.unlink(missing_ok=True)
        return None


def save_pending(config: ApplianceConfig, pending: PendingRequest) -> Path:
    path = pending_path(config)
    _write_private(path, pending.model_dump_json().encode())
    return path


def drop_pending(config: ApplianceConfig) -> None:
    pending_path(config).unlink(missing_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    """Owner-only (0600), fsynced, renamed into place: a power cut leaves the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or an older file said
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def apply_credentials(config: ApplianceConfig, creds: StoredCredentials) -> ApplianceConfig:
    """The configuration with the enrolled credentials in place of the TOML's."""
    fleet = config.fleet.model_copy(
        update={"username": creds.broker_username, "password": creds.broker_password}
    )
    call = config.call.model_copy(update={"token": creds.call_token})
    return config.model_copy(update={"fleet": fleet, "call": call})


def _post(config: ApplianceConfig, path: str, body: dict[str, Any], bearer: str | None) -> Any:
    base = config.fleet.enrolment_url
    if base is None:
        raise EnrolmentError("[fleet] enrolment_url is not set")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by the config
        base.rstrip("/") + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    context = https_context(config.fleet.tls)  # the Pays's own CA, if any, as for mqtts://
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S, context=context) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = _detail(exc)
        if exc.code >= 500 or exc.code == 429:
            raise FleetUnreachableError(f"fleet server error ({exc.code}): {detail}") from None
        if exc.code == 401 and bearer is not None:
            raise RequestGoneError(f"enrolment request unknown ({exc.code}): {detail}") from None
        raise EnrolmentRefusedError(detail or f"refus du serveur ({exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FleetUnreachableError(f"fleet server unreachable: {exc}") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("detail", ""))
    except ValueError:
        return ""


def _ignore(_status: EnrolmentStatus) -> None:
    return None


def token_refused(detail: str) -> str:
    """The technician's message for a token the server refused."""
    why = f" ({detail.rstrip('.')})" if detail else ""
    return f"Le serveur de flotte a refusé l'enrôlement de ce guichet{why}.\n{WHAT_TO_DO}"


REQUEST_REFUSED: Final = {
    "rejected": "Le Pays a refusé la demande d'enrôlement de ce guichet.",
    "collected": (
        "Les identifiants de ce guichet ont déjà été remis, mais le guichet ne les a pas"
        " gardés : le Pays doit le ré-enrôler."
    ),
}


async def enrol(
    config: ApplianceConfig,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    retry_min_s: float = RETRY_MIN_S,
    report: Report = _ignore,
) -> StoredCredentials:
    """Ask to join (or go on with the stored pending request), wait for approval as long as
    it takes, store and return the credentials. Raises ``EnrolmentRefusedError`` for good."""
    token = config.fleet.enrolment_token
    if token is None:
        raise EnrolmentError("[fleet] enrolment_token is not set")
    pause_s = retry_min_s
    while True:
        try:
            pending = await _pending_for(config, token, report)
            creds = await _wait_for_approval(config, pending, poll_interval_s, report)
        except FleetUnreachableError as exc:
            logger.warning("fleet server unreachable; will retry", extra={"error": str(exc)})
            report(EnrolmentStatus("unreachable", message=_unreachable(config, pause_s)))
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, max(RETRY_MAX_S, retry_min_s))
            continue
        except RequestGoneError:
            logger.warning("pending enrolment request unknown to the server; asking again")
            await asyncio.to_thread(drop_pending, config)
            continue
        except EnrolmentRefusedError as exc:
            logger.error("enrolment refused", extra={"reason": str(exc).splitlines()[0]})
            report(EnrolmentStatus("refused", message=str(exc)))
            raise
        await asyncio.to_thread(drop_pending, config)
        report(EnrolmentStatus("enrolled"))
        return creds


def _unreachable(config: ApplianceConfig, pause_s: float) -> str:
    return (
        f"Le serveur de flotte ({config.fleet.enrolment_url}) ne répond pas ;"
        f" nouvel essai dans {round(pause_s)} s. Vérifiez le réseau et [flotte] site_web."
    )


async def _pending_for(config: ApplianceConfig, token: str, report: Report) -> PendingRequest:
    """The stored request made with this token, else a new one (stored before it is used)."""
    digest = poll_digest(token)
    pending = await asyncio.to_thread(load_pending, config)
    if pending is not None and pending.token_sha256 == digest:
        logger.info("going on with the stored enrolment request", extra={"code": pending.code})
        return pending
    if pending is not None:
        logger.info("enrolment token changed: the stored request is dropped")
        await asyncio.to_thread(drop_pending, config)
    report(EnrolmentStatus("asking"))
    body = {
        "token": token,
        "device_id": config.device.id,
        "hardware_id": await asyncio.to_thread(hardware_identity),
        "name": config.device.name,
    }
    try:
        answer = await asyncio.to_thread(_post, config, "/api/v1/enrol", body, None)
    except EnrolmentRefusedError as exc:
        raise EnrolmentRefusedError(token_refused(str(exc))) from None
    poll = str(answer["poll_secret"])
    pending = PendingRequest(
        token_sha256=digest,
        poll_secret=poll,
        code=short_code(poll),
        requested_at=datetime.now(UTC),
    )
    await asyncio.to_thread(save_pending, config, pending)
    logger.info("enrolment requested", extra={"state": answer.get("state"), "code": pending.code})
    return pending


async def _wait_for_approval(
    config: ApplianceConfig, pending: PendingRequest, poll_interval_s: float, report: Report
) -> StoredCredentials:
    reported = False
    while True:
        state, creds = await collect(config, pending.poll_secret)
        if creds is not None:
            return creds
        if state in REQUEST_REFUSED:
            raise EnrolmentRefusedError(f"{REQUEST_REFUSED[state]}\n{WHAT_TO_DO}")
        if state not in ("pending", "approved"):  # expired, or a state this side does not know
            raise RequestGoneError(f"enrolment request {state}")
        if not reported:
            logger.info("waiting for an administrator's approval", extra={"code": pending.code})
            report(EnrolmentStatus("pending", code=pending.code))
            reported = True
        await asyncio.sleep(poll_interval_s)


async def collect(config: ApplianceConfig, poll: str) -> tuple[str, StoredCredentials | None]:
    """Ask once: the request's state, and the credentials (then stored) when issued."""
    result = await asyncio.to_thread(_post, config, "/api/v1/enrol/collect", {}, poll)
    state = str(result.get("state"))
    if state != "collected" or not result.get("broker_password"):
        return state, None
    creds = StoredCredentials.model_validate({k: result[k] for k in StoredCredentials.model_fields})
    path = await asyncio.to_thread(save_credentials, config, creds)
    logger.info("credentials stored", extra={"path": str(path)})
    return state, creds


async def rotate(config: ApplianceConfig, poll: str) -> StoredCredentials:
    """The ``rotate_credentials`` command: collect the new credentials now."""
    _state, creds = await collect(config, poll)
    if creds is None:
        raise EnrolmentError("no new credentials to collect")
    return creds


def needs_enrolment(config: ApplianceConfig, creds: StoredCredentials | None) -> bool:
    return creds is None and config.fleet.enrolment_token is not None


async def ensure_enrolled(config: ApplianceConfig, *, report: Report = _ignore) -> ApplianceConfig:
    """Stored credentials if any; else enrol (waiting as long as it takes) when a token is
    configured."""
    creds = await asyncio.to_thread(load_credentials, config)
    if needs_enrolment(config, creds):
        creds = await enrol(config, report=report)
    return config if creds is None else apply_credentials(config, creds)
