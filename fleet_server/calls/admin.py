"""Services and counters' call tokens: what the admin pages, the CLI and ``/ws/counter`` share.

A call token is random (``security.auth.random_call_token``, which enrolment uses too), shown
once and stored only as its SHA-256 on the counter's row, like API tokens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import Device, Service
from fleet_server.security.auth import random_call_token, token_digest
from guichet.contract import DeviceState

logger = logging.getLogger(__name__)

SERVICE_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class CallSetupError(FleetError):
    """A service or counter operation that cannot be done (unknown counter, bad code…)."""


def valid_service_code(code: str) -> bool:
    return SERVICE_CODE_RE.fullmatch(code) is not None


def services(session: Session) -> Sequence[Service]:
    return session.scalars(select(Service).order_by(Service.label)).all()


def create_service(session: Session, code: str, label: str) -> Service:
    """A new service; the caller commits."""
    code, label = code.strip().lower(), label.strip()
    if not valid_service_code(code):
        raise CallSetupError(
            "code de service invalide (minuscules, chiffres et tirets, 64 caractères au plus)"
        )
    if not label or len(label) > 128:
        raise CallSetupError("libellé vide ou trop long (128 caractères au plus)")
    if session.get(Service, code) is not None:
        raise CallSetupError(f"le service « {code} » existe déjà")
    service = Service(code=code, label=label)
    session.add(service)
    session.flush()
    logger.info("service created", extra={"service": code})
    return service


def set_device_service(session: Session, device_id: str, code: str | None) -> None:
    """Choose which service the counter's button calls (None: none); the caller commits."""
    device = session.get(Device, device_id)
    if device is None:
        raise CallSetupError(f"guichet inconnu « {device_id} »")
    if code and session.get(Service, code) is None:
        raise CallSetupError(f"service inconnu « {code} »")
    device.service = code or None
    logger.info("counter service set", extra={"device_id": device_id, "service": code})


def set_device_speech(session: Session, device_id: str, speech: bool | None) -> None:
    """Whether the counter says every screen aloud (None: as its own configuration says);
    the caller commits and pushes the counter's config."""
    device = session.get(Device, device_id)
    if device is None:
        raise CallSetupError(f"guichet inconnu « {device_id} »")
    device.speech = speech
    logger.info("counter speech set", extra={"device_id": device_id, "speech": speech})


def new_call_token(session: Session, device_id: str, *, create: bool = False) -> str:
    """A fresh call token for the counter (the previous one stops working); commits.

    With ``create``, an unknown counter is created first (a token made before its first boot).
    """
    device = session.get(Device, device_id)
    if device is None:
        if not create:
            raise CallSetupError(f"guichet inconnu « {device_id} »")
        device = Device(id=device_id, state=DeviceState.UNKNOWN)
        session.add(device)
    token = random_call_token()
    device.call_token_sha256 = token_digest(token)
    session.commit()
    logger.info("call token created", extra={"device_id": device_id})
    return token


def device_for_call_token(session: Session, token: str | None) -> Device | None:
    """The counter owning this call token, or None."""
    if not token:
        return None
    return session.scalar(select(Device).where(Device.call_token_sha256 == token_digest(token)))
