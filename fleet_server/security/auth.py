"""Users, passwords, API tokens, login throttling and CSRF tokens.

- Passwords are hashed with argon2id (argon2-cffi's defaults) and rehashed on login when
  those defaults change. An unknown username costs the same hash verification as a known
  one, so response times do not reveal which usernames exist.
- API tokens are random, shown once, and only their SHA-256 is stored (``ApiToken``).
- Login throttling is per (username, client IP) and in memory: after
  ``THROTTLE_MAX_FAILURES`` failures within ``THROTTLE_WINDOW_S`` the pair is locked for
  ``THROTTLE_LOCKOUT_S``. A second throttle counts failures per client IP alone
  (``IP_THROTTLE_MAX_FAILURES``), so trying many usernames from one place is locked too.
  Several server replicas each keep their own counters. Memory is bounded
  (``THROTTLE_MAX_KEYS``): past it, keys without a lockout are forgotten first, oldest first.
  The client IP is the peer's, or what a configured trusted proxy says (``proxies.py``).
- Administrators may add a TOTP second factor (RFC 6238, pyotp; 30 s steps, one step of
  clock drift accepted). A code is accepted once: the user's last used step is stored and
  only a later step passes (an atomic conditional UPDATE, so two racing logins cannot both).
- Sessions are server-side (``WebSession`` rows): the signed cookie carries a random session
  id whose SHA-256 must name a row of the same user, checked on every request. Logout deletes
  the row; a password reset, deactivation or a role change delete all of the user's rows, so
  a copied cookie is worth nothing afterwards.
- CSRF: one random token per session, put in every form that changes state and compared in
  constant time on the server (synchroniser token pattern; the session cookie is also
  ``SameSite=Lax``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import ApiToken, User, WebSession
from fleet_server.security.roles import Role
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

ROLES: Final = tuple(Role)
# A new username: lowercase ASCII letters, digits, ".", "_", "-", starting with a letter or
# digit (the HTML form's ``pattern`` is the same). No spaces, accents or look-alikes to
# mistype at login; older names that do not match keep working.
USERNAME_PATTERN: Final = r"[a-z0-9][a-z0-9._\-]{0,63}"
_USERNAME_RE = re.compile(USERNAME_PATTERN)
USERNAME_RULE: Final = (
    "lettres minuscules sans accents, chiffres, « . », « _ » ou « - », en commençant par une"
    " lettre ou un chiffre (64 caractères au plus)"
)
MIN_PASSWORD_LENGTH = 10  # characters; argon2 makes guessing slow, length makes it hopeless
THROTTLE_MAX_FAILURES = 5  # failed logins per (username, IP) before a lockout
THROTTLE_WINDOW_S = 15 * 60.0  # failures older than this are forgotten
THROTTLE_LOCKOUT_S = 5 * 60.0  # how long a locked (username, IP) pair must wait
IP_THROTTLE_MAX_FAILURES = 20  # failed logins from one IP, any usernames, before a lockout
THROTTLE_MAX_KEYS = 10_000  # keys remembered at most; beyond, the least useful are forgotten
TOTP_VALID_WINDOW = 1  # 30 s steps of clock drift accepted either side
TOTP_ISSUER = "Guichet Proche"
TOKEN_PREFIX = "gp_"  # noqa: S105 - a marker, not a secret: secret scanners spot leaks
TOKEN_BYTES = 32  # 256 bits of randomness
CALL_TOKEN_PREFIX = "gpc_"  # noqa: S105 - a marker, not a secret (secret scanners spot leaks)
CALL_TOKEN_BYTES = 32  # 256 bits
SESSION_USER_KEY = "uid"
SESSION_ID_KEY = "sid"
SESSION_MAX_AGE_S = 12 * 3600  # a working day; the cookie and its row both expire then
SESSION_CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost one verification."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AuthError(FleetError):
    """A user or token operation that cannot be done (unknown user, weak password...)."""


@dataclass(frozen=True)
class Principal:
    """Who is making a request, whether by session cookie or API token."""

    user_id: int
    username: str
    role: str
    via_token: bool = False
    service: str | None = None  # an agent's service
    site: str | None = None  # a reception user's site


def principal_of(user: User, *, via_token: bool = False) -> Principal:
    return Principal(user.id, user.username, user.role, via_token, user.service, user.site)


# --- passwords and users ----------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None. Commits a rehash if due."""
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user


def upsert_user(
    session: Session,
    username: str,
    password: str,
    *,
    role: str = Role.ADMIN,
    service: str | None = None,
    site: str | None = None,
) -> User:
    """Create the user, or update its password, role, service and site if it exists.

    The caller commits (``AuthError`` leaves the session untouched).
    """
    if role not in ROLES:
        raise AuthError(f"rôle inconnu « {role} » (attendu : {', '.join(ROLES)})")
    check_password(password)
    if not username or len(username) > 64:
        raise AuthError("identifiant vide ou trop long (64 caractères au plus)")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        check_username(username)
        user = User(username=username, created_at=utcnow(), active=True)
        session.add(user)
    else:
        end_user_sessions(session, user.id)  # a new password or role: log it out everywhere
    user.password_hash = hash_password(password)
    user.role, user.service, user.site = role, service, site
    session.flush()
    logger.info("user saved", extra={"username": username, "role": role})
    return user


def check_username(username: str) -> None:
    """A new user's name follows ``USERNAME_PATTERN``."""
    if _USERNAME_RE.fullmatch(username) is None:
        raise AuthError(f"identifiant « {username[:64]} » refusé : {USERNAME_RULE}")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"mot de passe trop court ({MIN_PASSWORD_LENGTH} caractères au moins)")


def check_role(role: str, service: str | None, site: str | None) -> None:
    """A role with what it needs: an agent answers for a service, reception works at a site."""
    if role not in ROLES:
        raise AuthError(f"rôle inconnu « {role} » (attendu : {', '.join(ROLES)})")
    if role == Role.AGENT and not service:
        raise AuthError("un agent répond pour un service")
    if role == Role.RECEPTION and not site:
        raise AuthError("un agent d'accueil travaille sur un site")


def set_password(user: User, password: str) -> None:
    """An administrator's reset: a new argon2 hash; the caller commits."""
    check_password(password)
    user.password_hash = hash_password(password)


# --- TOTP second factor -----------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app reads (typed in by hand: no QR code library)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The 30 s step (within the drift window) whose code this is, or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(time.time() if now is None else now, UTC))
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def use_totp(db: Session, user: User, code: str) -> bool:
    """Check ``user``'s code and use it up: a step at or before the last one used is refused.
    Commits."""
    if user.totp_secret is None:
        return False
    step = totp_step(user.totp_secret, code)
    if step is None:
        return False
    used = db.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return bool(used.rowcount)  # type: ignore[attr-defined]


# --- API and call tokens ----------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, username: str, name: str = "api") -> str:
    """A new token for an existing user; the clear token is returned once, never stored."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AuthError(f"utilisateur inconnu « {username} »")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        ApiToken(user_id=user.id, name=name, token_sha256=token_digest(token), created_at=utcnow())
    )
    session.commit()
    logger.info("api token created", extra={"username": username, "token_name": name})
    return token


def random_call_token() -> str:
    """A counter's signalling (call) token, in clear: shown once, stored as its ``token_digest``.

    Made by the admin pages and the CLI (``fleet_server.calls.admin``) and by enrolment.
    """
    return CALL_TOKEN_PREFIX + secrets.token_urlsafe(CALL_TOKEN_BYTES)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning this bearer token, or None."""
    row = session.execute(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == token_digest(token))
    ).scalar_one_or_none()
    return row if row is not None and row.active else None


# --- login throttling -------------------------------------------------------------------


@dataclass
class _Attempts:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins per key (``username|ip``) and locks a key for a while.

    Thread-safe: the login route runs in FastAPI's thread pool.
    """

    def __init__(
        self,
        max_failures: int = THROTTLE_MAX_FAILURES,
        window_s: float = THROTTLE_WINDOW_S,
        lockout_s: float = THROTTLE_LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = THROTTLE_MAX_KEYS,
    ) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Attempts] = {}

    def locked_for(self, key: str) -> float:
        """Seconds this key must still wait (0 when it may try)."""
        with self._lock:
            attempts = self._keys.get(key)
            return max(0.0, attempts.locked_until - self._clock()) if attempts else 0.0

    def failure(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            attempts = self._keys.setdefault(key, _Attempts())
            attempts.failures = [t for t in attempts.failures if now - t < self.window_s]
            attempts.failures.append(now)
            if len(attempts.failures) >= self.max_failures:
                attempts.locked_until = now + self.lockout_s
                attempts.failures.clear()
                logger.warning("login locked after repeated failures", extra={"key": key})
            self._forget_old(now)

    def success(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def size(self) -> int:
        with self._lock:
            return len(self._keys)

    def _forget_old(self, now: float) -> None:
        # Bounded memory (called with the lock held): past max_keys, drop keys with nothing
        # recent; if still too many, keep the locked keys and the most recent others, down to
        # 90 % so that the sort is not paid on every failure.
        if len(self._keys) <= self.max_keys:
            return
        horizon = max(self.window_s, self.lockout_s)
        self._keys = {
            k: a
            for k, a in self._keys.items()
            if a.locked_until > now or (a.failures and now - a.failures[-1] < horizon)
        }
        if len(self._keys) <= self.max_keys:
            return

        def worth(item: tuple[str, _Attempts]) -> tuple[bool, float]:
            attempts = item[1]
            locked = attempts.locked_until > now
            return locked, attempts.locked_until if locked else attempts.failures[-1]

        keep = int(self.max_keys * 0.9)
        self._keys = dict(sorted(self._keys.items(), key=worth)[-keep:])


# --- CSRF -------------------------------------------------------------------------------


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """This session's CSRF token, created on first use."""
    token = session.get(SESSION_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF_KEY] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    expected = session.get(SESSION_CSRF_KEY)
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return secrets.compare_digest(expected.encode(), submitted.encode())


def start_session(db: Session, cookie: MutableMapping[str, Any], user: User) -> None:
    """Log a user in: a new server-side session (no fixation) with a new CSRF token. Commits."""
    cookie.clear()
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    db.execute(  # sessions past their age, anyone's: keeps the table small
        delete(WebSession).where(WebSession.created_at < now - timedelta(seconds=SESSION_MAX_AGE_S))
    )
    db.add(WebSession(id_sha256=token_digest(sid), user_id=user.id, created_at=now))
    db.commit()
    cookie[SESSION_USER_KEY] = user.id
    cookie[SESSION_ID_KEY] = sid
    cookie[SESSION_CSRF_KEY] = secrets.token_urlsafe(32)


def session_owner(db: Session, cookie: MutableMapping[str, Any]) -> User | None:
    """The active user whose live server-side session this cookie names, or None."""
    uid, sid = session_user_id(cookie), cookie.get(SESSION_ID_KEY)
    if uid is None or not isinstance(sid, str):
        return None
    row = db.get(WebSession, token_digest(sid))
    if row is None or row.user_id != uid:
        return None
    if row.created_at < utcnow() - timedelta(seconds=SESSION_MAX_AGE_S):
        return None
    user = db.get(User, uid)
    return user if user is not None and user.active else None


def end_session(db: Session, cookie: MutableMapping[str, Any]) -> None:
    """Logout: this session's row is deleted (a copy of the cookie is void). Commits."""
    sid = cookie.get(SESSION_ID_KEY)
    if isinstance(sid, str):
        db.execute(delete(WebSession).where(WebSession.id_sha256 == token_digest(sid)))
        db.commit()
    cookie.clear()


def end_user_sessions(db: Session, user_id: int) -> None:
    """Every session of this user ends (password reset, deactivation, new role); the caller
    commits."""
    db.execute(delete(WebSession).where(WebSession.user_id == user_id))


def session_user_id(session: MutableMapping[str, Any]) -> int | None:
    """The user id the cookie claims (not proof of a live session: see ``session_owner``)."""
    uid = session.get(SESSION_USER_KEY)
    return uid if isinstance(uid, int) else None
