"""People and trust: users, their server-side web sessions and API tokens, the audit log,
enrolment tokens and counters' enrolment requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet_server.models.base import Base, UtcDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id
    role: Mapped[str] = mapped_column(String(16), default="admin")
    service: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Base32 TOTP secret (second factor, administrators); a shared secret, so not a hash.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last 30 s step whose code was accepted: a code is good once (no replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # SHA-256 of the secret in the agent's iCalendar feed URL (calendar apps send no cookie).
    ical_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)


class WebSession(Base):
    """A logged-in browser: the cookie names it; logout, a password reset, deactivation or a
    role change delete the row, and the cookie is worth nothing from then on."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """One administrative act: who (id and name, kept if the user goes), when, what, on what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)  # the page's filter

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EnrolmentToken(Base):
    """A token a technician puts on a counter so it may ask to join a site; SHA-256 only."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    site: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    pre_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class EnrolmentRequest(Base):
    """A counter that presented a token: pending, approved, rejected, then collected once."""

    __tablename__ = "enrolment_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    hardware_id: Mapped[str] = mapped_column(String(128))
    site: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128), default="")
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrolment_tokens.id", ondelete="SET NULL")
    )
    # SHA-256 of the secret the counter polls with (given to it at request time only).
    poll_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending/approved/rejected/…
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    # The request and its poll secret are void after this (None: made before it existed).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # An administrator's rotation of an enrolled counter's credentials (same hardware).
    rotation: Mapped[bool] = mapped_column(Boolean, default=False)
