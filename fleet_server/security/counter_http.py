"""A counter's own credentials over HTTPS (docs/updates.md, "The wire"; docs/security.md).

Counters have no HTTP account of their own: they download their update bundle with HTTP basic
authentication, user name = their device id (= their broker user name), password = the broker
password they collected at enrolment. The server keeps only Mosquitto's hash of it
(``Device.broker_password_hash``, ``$7$`` PBKDF2-SHA512, ``enrolment.broker_password_hash``);
it is checked here the same way Mosquitto checks a CONNECT. A withdrawn counter has no hash
any more, so its old password opens nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging

from sqlalchemy.orm import Session

from fleet_server.models import Device
from fleet_server.security.enrolment import DEVICE_ID_RE

logger = logging.getLogger(__name__)

MAX_ITERATIONS = 1_000_000  # a stored hash is ours; this bounds a corrupted one
MAX_HEADER_CHARS = 512  # device id (64) + a 43-character password, base64: far below


def verify_broker_password(password: str, stored: str | None) -> bool:
    """Does ``password`` match Mosquitto's ``$7$iterations$salt$digest`` line ``stored``?"""
    if not stored:
        return False
    parts = stored.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not parts[2].isdigit():
        return False
    iterations = int(parts[2])
    if not 1 <= iterations <= MAX_ITERATIONS:
        return False
    try:
        salt, digest = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4])
    except (binascii.Error, ValueError):
        return False
    mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(mine, digest)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic …`` header, else None."""
    if not authorization or len(authorization) > MAX_HEADER_CHARS:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon and user and password else None


def authenticate_counter(session: Session, authorization: str | None) -> Device | None:
    """The enrolled, not withdrawn counter these basic credentials are, else None."""
    credentials = basic_credentials(authorization)
    if credentials is None:
        return None
    device_id, password = credentials
    if DEVICE_ID_RE.fullmatch(device_id) is None:
        return None
    device = session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        return None
    if not verify_broker_password(password, device.broker_password_hash):
        logger.warning("counter credentials refused", extra={"device_id": device_id})
        return None
    return device
