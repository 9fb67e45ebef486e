"""Enrolment on the counter's side: hardware identity, asking to join, storing credentials.

The counter presents its enrolment token, id and hardware identity to the fleet server's
``POST /api/v1/enrol``, then polls ``/api/v1/enrol/collect`` with the poll secret it got
until an administrator approves. The credentials (broker username and password, call token)
are written owner-only (0600) to ``<data_dir>/credentials.json`` and override the TOML's.
HTTP is blocking urllib, run in a thread; no secret is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from appliance.config import ApplianceConfig
from guichet.errors import EnrolmentError as EnrolmentError  # re-exported: enrol.EnrolmentError

logger = logging.getLogger(__name__)

CREDENTIALS_FILE: Final = "credentials.json"
POLL_INTERVAL_S: Final = 10.0  # an administrator approves within minutes; cheap to ask
HTTP_TIMEOUT_S: Final = 15.0
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or an older file said
        os.write(fd, creds.model_dump_json().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


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
    ca = config.fleet.tls.ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S, context=context) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = _detail(exc)
        raise EnrolmentError(f"enrolment refused ({exc.code}): {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EnrolmentError(f"fleet server unreachable: {exc}") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("detail", ""))
    except ValueError:
        return ""


async def enrol(
    config: ApplianceConfig, *, poll_interval_s: float = POLL_INTERVAL_S
) -> StoredCredentials:
    """Ask to join, wait for approval, store and return the credentials."""
    token = config.fleet.enrolment_token
    if token is None:
        raise EnrolmentError("[fleet] enrolment_token is not set")
    body = {
        "token": token,
        "device_id": config.device.id,
        "hardware_id": await asyncio.to_thread(hardware_identity),
        "name": config.device.name,
    }
    answer = await asyncio.to_thread(_post, config, "/api/v1/enrol", body, None)
    poll = str(answer["poll_secret"])
    logger.info("enrolment requested", extra={"state": answer.get("state")})
    while True:
        state, creds = await collect(config, poll)
        if creds is not None:
            return creds
        if state not in ("pending", "approved"):
            raise EnrolmentError(f"enrolment {state}")
        logger.info("waiting for an administrator's approval")
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


async def ensure_enrolled(config: ApplianceConfig) -> ApplianceConfig:
    """At start: stored credentials if any; else enrol when a token is configured."""
    creds = await asyncio.to_thread(load_credentials, config)
    if creds is None and config.fleet.enrolment_token is not None:
        creds = await enrol(config)
    return config if creds is None else apply_credentials(config, creds)
