"""Counter enrolment: tokens, requests, approval, credentials, rotation and revocation.

1. An administrator creates an enrolment token for a site (expiry, number of uses,
   optionally pre-approved); the clear token (``gpe_…``) is shown once, only its SHA-256 kept.
2. The counter presents it with its id and hardware identity (``request``); it gets back a
   poll secret (``gpp_…``, SHA-256 kept) and the request is pending (or approved at once).
3. An administrator approves (or rejects) the request.
4. The counter polls with its poll secret (``collect``). Once approved, the server makes the
   counter's credentials — broker password and signalling (call) token, both 256-bit random
   — stores only their hashes, and returns the clear values exactly once.

A token cannot take over an existing counter: a counter id that already has credentials (a
call token from its page or the CLI, a broker password, an enrolment) is refused at request,
at approval and at collection, unless an administrator revoked it first — which is how a
counter is explicitly re-enrolled (new SD card, replaced Pi). Collecting one request closes
every other open request for the same counter, and a request (with its poll secret) expires
``REQUEST_VALID_HOURS`` after it was made. Rotation (``rotate``) opens an approved request for
the same counter and hardware; the counter collects the new credentials with the poll secret
sent in its ``rotate_credentials`` command. Revocation (``revoke``) deletes both credentials.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet_server import paging
from fleet_server.models import Device, EnrolmentRequest, EnrolmentToken
from fleet_server.security import audit
from fleet_server.security.auth import random_call_token, token_digest
from guichet.contract import DEVICE_ID_PATTERN, DeviceState, utcnow
from guichet.errors import EnrolmentError as EnrolmentError  # re-exported

logger = logging.getLogger(__name__)

ENROL_TOKEN_PREFIX: Final = "gpe_"  # noqa: S105 - markers, not secrets (scanners spot leaks)
POLL_PREFIX: Final = "gpp_"
SECRET_BYTES: Final = 32  # 256 bits for every secret made here
MAX_TOKEN_HOURS: Final = 24 * 30  # an enrolment token lives a month at most
MAX_TOKEN_USES: Final = 500
REQUEST_VALID_HOURS: Final = 72  # a request and its poll secret: approve and collect by then
# Mosquitto's own password hash ($7$: PBKDF2-SHA512). The secrets are 256-bit random, so the
# iteration count guards nothing; Mosquitto's default keeps each CONNECT cheap.
PBKDF2_ITERATIONS: Final = 101
PBKDF2_SALT_BYTES: Final = 12
HARDWARE_ID_RE: Final = re.compile(r"^[A-Za-z0-9:._-]{4,128}$")
DEVICE_ID_RE: Final = re.compile(DEVICE_ID_PATTERN)
OPEN_STATES: Final = ("pending", "approved")  # then rejected or collected


class CounterTakenError(EnrolmentError):
    """The counter id already has credentials: an administrator must revoke it first."""

    def __init__(self) -> None:
        super().__init__(
            "ce guichet a déjà des identifiants : retirez-le du service avant de le réenrôler"
        )


@dataclass(frozen=True)
class Credentials:
    device_id: str
    broker_username: str
    broker_password: str
    call_token: str


def valid_identity(device_id: str, hardware_id: str) -> bool:
    """Both identifiers whole (``fullmatch``: a trailing newline would break the passwd file)."""
    return (
        DEVICE_ID_RE.fullmatch(device_id) is not None
        and HARDWARE_ID_RE.fullmatch(hardware_id) is not None
    )


def broker_password_hash(password: str) -> str:
    """The line Mosquitto's password file expects after ``username:``."""
    salt = secrets.token_bytes(PBKDF2_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


# --- tokens -----------------------------------------------------------------------------


def create_token(
    session: Session,
    *,
    site: str,
    valid_hours: int,
    max_uses: int,
    pre_approved: bool,
    actor: str,
    actor_user_id: int | None = None,
) -> str:
    """A new enrolment token (clear, shown once); the caller commits."""
    site = site.strip()
    if not site or len(site) > 128:
        raise EnrolmentError("site vide ou trop long (128 caractères au plus)")
    if not 1 <= valid_hours <= MAX_TOKEN_HOURS:
        raise EnrolmentError(f"durée de validité entre 1 et {MAX_TOKEN_HOURS} heures")
    if not 1 <= max_uses <= MAX_TOKEN_USES:
        raise EnrolmentError(f"nombre d'utilisations entre 1 et {MAX_TOKEN_USES}")
    token = ENROL_TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    row = EnrolmentToken(
        token_sha256=token_digest(token),
        site=site,
        created_at=now,
        created_by=actor,
        expires_at=now + timedelta(hours=valid_hours),
        max_uses=max_uses,
        uses=0,
        pre_approved=pre_approved,
        revoked=False,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "enrolment_token.create", site, actor_user_id=actor_user_id,
        token_id=row.id, valid_hours=valid_hours, max_uses=max_uses, pre_approved=pre_approved,
    )  # fmt: skip
    return token


def revoke_token(session: Session, token_id: int, *, actor: str, actor_user_id: int) -> None:
    row = session.get(EnrolmentToken, token_id)
    if row is None:
        raise EnrolmentError("jeton d'enrôlement inconnu")
    row.revoked = True
    audit.record(
        session, actor, "enrolment_token.revoke", row.site, actor_user_id=actor_user_id,
        token_id=token_id,
    )  # fmt: skip


# --- the counter's side -----------------------------------------------------------------


def request(
    session: Session, token: str, device_id: str, hardware_id: str, name: str = ""
) -> tuple[str, str]:
    """A counter asks to join: (state, poll secret). Commits."""
    if not valid_identity(device_id, hardware_id):
        raise EnrolmentError("identifiant de guichet ou de matériel invalide")
    row = session.scalar(
        select(EnrolmentToken).where(EnrolmentToken.token_sha256 == token_digest(token))
    )
    now = utcnow()
    if row is None or row.revoked or row.expires_at <= now or row.uses >= row.max_uses:
        raise EnrolmentError("jeton d'enrôlement invalide, expiré ou épuisé")
    if _has_credentials(session.get(Device, device_id)):
        raise CounterTakenError
    if not _use_token(session, row.id, now):
        raise EnrolmentError("jeton d'enrôlement invalide, expiré ou épuisé")
    poll = POLL_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    state = "approved" if row.pre_approved else "pending"
    session.add(
        EnrolmentRequest(
            device_id=device_id,
            hardware_id=hardware_id,
            site=row.site,
            name=name.strip()[:128],
            token_id=row.id,
            poll_sha256=token_digest(poll),
            state=state,
            requested_at=now,
            decided_at=now if row.pre_approved else None,
            decided_by="jeton pré-approuvé" if row.pre_approved else None,
            expires_at=now + timedelta(hours=REQUEST_VALID_HOURS),
        )
    )
    session.commit()
    logger.info("enrolment requested", extra={"device_id": device_id, "state": state})
    return state, poll


def _has_credentials(device: Device | None) -> bool:
    """True if this counter can already connect (call token, broker password or an
    enrolment) and no administrator has revoked it since."""
    if device is None or device.revoked_at is not None:
        return False
    return any((device.call_token_sha256, device.broker_password_hash, device.hardware_id))


def _expired(req: EnrolmentRequest, now: datetime) -> bool:
    return req.expires_at is not None and req.expires_at <= now


def _use_token(session: Session, token_id: int, now: datetime) -> bool:
    """Count one use, atomically: a conditional UPDATE that only one of N concurrent requests
    on the last use can win (PostgreSQL re-checks the WHERE after the row lock; SQLite
    serialises writers). False if the token is used up, revoked or expired meanwhile."""
    used = session.execute(
        update(EnrolmentToken)
        .where(
            EnrolmentToken.id == token_id,
            EnrolmentToken.uses < EnrolmentToken.max_uses,
            EnrolmentToken.revoked.is_(False),
            EnrolmentToken.expires_at > now,
        )
        .values(uses=EnrolmentToken.uses + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


def collect(session: Session, poll: str) -> tuple[str, Credentials | None]:
    """The request's state, with the credentials once (when approved). Commits.

    Re-checked here, with the counter's row locked: an enrolment still finds the counter
    without credentials, a rotation finds it enrolled on the same hardware; else the request
    is rejected. An expired request is refused like an unknown poll secret."""
    req = session.scalar(
        select(EnrolmentRequest).where(EnrolmentRequest.poll_sha256 == token_digest(poll))
    )
    now = utcnow()
    if req is None or (req.state in OPEN_STATES and _expired(req, now)):
        raise EnrolmentError("demande d'enrôlement inconnue ou expirée")
    if req.state != "approved":
        return req.state, None
    device = session.get(Device, req.device_id, with_for_update=True)
    if not _still_valid(req, device):
        req.state = "rejected"
        session.commit()
        logger.warning("enrolment refused at collection", extra={"device_id": req.device_id})
        return "rejected", None
    creds = Credentials(
        device_id=req.device_id,
        broker_username=req.device_id,
        broker_password=secrets.token_urlsafe(SECRET_BYTES),
        call_token=random_call_token(),
    )
    if device is None:
        device = Device(id=req.device_id, state=DeviceState.UNKNOWN, site=req.site, name=req.name)
        session.add(device)
    device.site = req.site
    device.name = device.name or req.name
    device.hardware_id = req.hardware_id
    device.broker_password_hash = broker_password_hash(creds.broker_password)
    device.call_token_sha256 = token_digest(creds.call_token)
    device.enrolled_at, device.revoked_at = now, None
    req.state = "collected"
    _close_others(session, req)
    try:
        session.commit()
    except IntegrityError:  # another request for a new counter id was collected just now
        session.rollback()
        raise CounterTakenError from None
    logger.info("credentials issued", extra={"device_id": req.device_id})
    return "collected", creds


def _still_valid(req: EnrolmentRequest, device: Device | None) -> bool:
    if req.rotation:
        return (
            device is not None
            and device.revoked_at is None
            and device.hardware_id == req.hardware_id
        )
    return not _has_credentials(device)


def _close_others(session: Session, req: EnrolmentRequest) -> None:
    """Every other open request for this counter is void once one has been collected."""
    session.execute(
        update(EnrolmentRequest)
        .where(
            EnrolmentRequest.device_id == req.device_id,
            EnrolmentRequest.id != req.id,
            EnrolmentRequest.state.in_(OPEN_STATES),
        )
        .values(state="rejected")
        .execution_options(synchronize_session=False)
    )


# --- administrators ---------------------------------------------------------------------


def pending(session: Session) -> list[EnrolmentRequest]:
    """Pending requests not yet expired, oldest first."""
    now = utcnow()
    query = select(EnrolmentRequest).where(
        EnrolmentRequest.state == "pending",
        or_(EnrolmentRequest.expires_at.is_(None), EnrolmentRequest.expires_at > now),
    )
    return list(session.scalars(query.order_by(EnrolmentRequest.requested_at)).all())


ENROLLED_ORDER = paging.Ordering(Device.id)


def enrolled_page(
    session: Session,
    search: str = "",
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = paging.DEFAULT_PAGE_SIZE,
) -> paging.Page[Device]:
    """A page of the counters that have been enrolled (revoked ones included), by id; counted
    (the list is bounded by the fleet). ``search``: part of the id or the site."""
    stmt = select(Device).where(Device.hardware_id.is_not(None))
    if search:
        stmt = stmt.where(paging.contains(search, Device.id, Device.site))
    return paging.keyset_page(
        session, stmt, ENROLLED_ORDER, _device, after=after, before=before, limit=limit
    )


def _device(row: paging.AnyRow) -> Device:
    device: Device = row[0]
    return device


def decide(
    session: Session, request_id: int, *, approve: bool, actor: str, actor_user_id: int
) -> EnrolmentRequest:
    """Approve or reject a pending request; the caller commits."""
    req = session.get(EnrolmentRequest, request_id)
    if req is None or req.state != "pending" or _expired(req, utcnow()):
        raise EnrolmentError("demande inconnue, expirée ou déjà traitée")
    if approve and _has_credentials(session.get(Device, req.device_id)):
        raise CounterTakenError
    req.state = "approved" if approve else "rejected"
    req.decided_at, req.decided_by = utcnow(), actor
    audit.record(
        session, actor, "enrolment.approve" if approve else "enrolment.reject", req.device_id,
        actor_user_id=actor_user_id, hardware_id=req.hardware_id, site=req.site,
    )  # fmt: skip
    return req


def rotate(session: Session, device_id: str, *, actor: str, actor_user_id: int | None) -> str:
    """An approved request for the same counter and hardware: its new poll secret, to be
    sent in the counter's ``rotate_credentials`` command. The old credentials keep working
    until the counter collects the new ones. The caller commits."""
    device = session.get(Device, device_id)
    if device is None or device.hardware_id is None or device.revoked_at is not None:
        raise EnrolmentError("guichet inconnu, non enrôlé ou retiré")
    poll = POLL_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    session.add(
        EnrolmentRequest(
            device_id=device_id,
            hardware_id=device.hardware_id,
            site=device.site,
            name=device.name,
            poll_sha256=token_digest(poll),
            state="approved",
            requested_at=now,
            decided_at=now,
            decided_by=actor,
            expires_at=now + timedelta(hours=REQUEST_VALID_HOURS),
            rotation=True,
        )
    )
    audit.record(session, actor, "device.rotate", device_id, actor_user_id=actor_user_id)
    return poll


def revoke(session: Session, device_id: str, *, actor: str, actor_user_id: int | None) -> None:
    """Decommission: both credentials deleted, open requests cancelled; the caller commits,
    then regenerates the broker files and drops the counter's live connections."""
    device = session.get(Device, device_id)
    if device is None:
        raise EnrolmentError("guichet inconnu")
    device.broker_password_hash = None
    device.call_token_sha256 = None
    device.revoked_at = utcnow()
    for req in session.scalars(
        select(EnrolmentRequest).where(
            EnrolmentRequest.device_id == device_id,
            EnrolmentRequest.state.in_(OPEN_STATES),
        )
    ):
        req.state = "rejected"
    audit.record(session, actor, "device.revoke", device_id, actor_user_id=actor_user_id)
