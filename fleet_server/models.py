"""The fleet server's tables (SQLAlchemy 2 declarative). Schema changes go through Alembic.

Times are stored as timezone-aware UTC datetimes. Everything a dashboard row needs is
denormalised onto ``devices`` so the fleet table is one indexed query at 10,000 counters.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from guichet.contract import DeviceState


class UtcDateTime(TypeDecorator[datetime]):
    """A DateTime that always comes back timezone-aware in UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        # Stored (and compared, on SQLite: as text without a zone) in UTC, whatever the zone
        # given: a Paris wall-clock time from a schedule must not be stored as if it were UTC.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Device(Base):
    """A counter, created on its first message; one row per counter with its latest state."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(128), default="", index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    # a guichet.contract.DeviceState
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.UNKNOWN, index=True)
    state_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    last_telemetry_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    telemetry_interval_s: Mapped[int] = mapped_column(Integer, default=30)
    software_version: Mapped[str | None] = mapped_column(String(64))
    cpu_temperature_c: Mapped[float | None] = mapped_column(Float)
    throttled: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_used_pct: Mapped[float | None] = mapped_column(Float)
    load1: Mapped[float | None] = mapped_column(Float)
    camera_health: Mapped[str | None] = mapped_column(String(16))
    printer_health: Mapped[str | None] = mapped_column(String(16))
    printer_detail: Mapped[str | None] = mapped_column(String(256))
    scanner_health: Mapped[str | None] = mapped_column(String(16))
    button_health: Mapped[str | None] = mapped_column(String(16))
    open_alerts: Mapped[int] = mapped_column(Integer, default=0, index=True)
    last_telemetry: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    service: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the counter's call token (``/ws/counter``); the clear token is shown once.
    call_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Enrolment: the hardware identity it presented, and its broker password as Mosquitto's
    # own PBKDF2-SHA512 hash (what the generated password file holds). None: no broker access.
    hardware_id: Mapped[str | None] = mapped_column(String(128))
    broker_password_hash: Mapped[str | None] = mapped_column(String(256))
    enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # What the counter says of itself in ``status``: shown as reported, never its site or
    # name above (those come from enrolment or an administrator and decide access).
    reported_site: Mapped[str | None] = mapped_column(String(128))
    reported_name: Mapped[str | None] = mapped_column(String(128))
    # The last status applied, by the counter's own time and state: a retained replay of
    # the same status is not news, a different one is (whatever the counter's clock says).
    status_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status_reported_state: Mapped[str | None] = mapped_column(String(16))
    # The counter's clock from its latest telemetry: synchronised (None: not said) and its
    # offset from the server's receive time (counter minus server, seconds).
    clock_synchronised: Mapped[bool | None] = mapped_column(Boolean)
    clock_offset_s: Mapped[float | None] = mapped_column(Float)


class Service(Base):
    """A public body agents answer for (Caf, MSA…); ``code`` is what devices and users hold."""

    __tablename__ = "services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    # Shown on a closed counter's screen next to the service's next opening.
    phone: Mapped[str | None] = mapped_column(String(32))
    # Appointments: slot length, and how long the booked agent's console rings alone.
    appointment_minutes: Mapped[int] = mapped_column(Integer, default=30)
    fallback_s: Mapped[int] = mapped_column(Integer, default=30)
    position: Mapped[int] = mapped_column(Integer, default=0)  # display order


class ScheduleRule(Base):
    """A weekly recurring window of one service: ``slot`` (walk-in, first come first served)
    or ``appointment`` (bookable slots, no walk-in). Scope: one counter, else one site, else
    every counter (both None). Times are Europe/Paris wall-clock times."""

    __tablename__ = "schedule_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(ForeignKey("services.code", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16))  # slot / appointment
    site: Mapped[str | None] = mapped_column(String(128), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)


class Permanence(Base):
    """A dated half-day (``am``/``pm``) of one service with the agents on duty (user ids)."""

    __tablename__ = "permanences"
    __table_args__ = (Index("ix_permanences_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(ForeignKey("services.code", ondelete="CASCADE"))
    site: Mapped[str | None] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    half: Mapped[str] = mapped_column(String(2))  # am / pm
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    agents: Mapped[list[int]] = mapped_column(JSON, default=list)


class ScheduleException(Base):
    """A closure (whole day when no times) or a one-off extra opening (``open``, with times),
    for one service or all (None), scoped like rules. Public holidays are computed, not here."""

    __tablename__ = "schedule_exceptions"
    __table_args__ = (Index("ix_schedule_exceptions_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str | None] = mapped_column(ForeignKey("services.code", ondelete="CASCADE"))
    site: Mapped[str | None] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # closed / open
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    note: Mapped[str] = mapped_column(String(200), default="")


class Appointment(Base):
    """One booked appointment at one counter. The citizen's data is minimal (a first name or
    initials, an optional phone number) and erased ``appointment_retention_days`` after it."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_device_start", "device_id", "start"),
        Index("ix_appointments_agent_start", "agent_user_id", "start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(ForeignKey("services.code", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    citizen_name: Mapped[str | None] = mapped_column(String(64))
    citizen_phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    personal_data_erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class QuestionnaireVersion(Base):
    """Every saved edit of the questionnaire; the highest version is the one counters ask."""

    __tablename__ = "questionnaires"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    timeout_s: Mapped[int] = mapped_column(Integer, default=30)
    spoken: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class CallRecord(Base):
    """One call from a counter, whatever its outcome. No personal data: the agent is an id."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_device_requested", "device_id", "requested_at"),
        Index("ix_calls_service_requested", "service", "requested_at"),
        Index("ix_calls_requested_at", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    site: Mapped[str] = mapped_column(String(128), default="")
    service: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class StatusChange(Base):
    """Every online/offline/silent transition, for the counter's history."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())  # received by the server
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32), default="")
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # the counter's clock


class TelemetrySample(Base):
    """One telemetry message's numbers; the full payload stays on ``devices`` (latest only)."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    cpu_temperature_c: Mapped[float | None] = mapped_column(Float)
    load1: Mapped[float] = mapped_column(Float)
    memory_used_pct: Mapped[float] = mapped_column(Float)
    disk_used_pct: Mapped[float] = mapped_column(Float)


class EventRecord(Base):
    """A counter's event, stored once: the primary key is the event's own id."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_device_at", "device_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    # When it happened: the counter's time if its clock was synchronised, else received_at.
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # the counter's clock
    kind: Mapped[str] = mapped_column(String(32), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SurveyRecord(Base):
    """Questionnaire answers, anonymous, stored once."""

    __tablename__ = "surveys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    # The month it counts in: the counter's time if its clock was synchronised, else
    # received_at (a counter a year behind must not put it in last year's statistics).
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # the counter's clock
    questionnaire_version: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    # For the statistics: the call's service and the counter's site when it was received.
    service: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(128), default="")


class CommandRecord(Base):
    """A remote command sent to a counter and its acknowledgement."""

    __tablename__ = "commands"

    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ok: Mapped[bool | None] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """An alert raised and cleared automatically; at most one open per (device, kind)."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_open", "cleared_at", "device_id"),
        Index("ix_alerts_device_kind", "device_id", "kind"),
        # At most one open alert per (device, kind), enforced by the database for replicas.
        Index(
            "ux_alerts_open_device_kind",
            "device_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(256), default="")
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BrokerLink(Base):
    """One ingest's own connection to the broker, as that ingest last wrote it."""

    __tablename__ = "broker_links"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    connected: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(UtcDateTime())  # in this state since
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the ingest's heartbeat


class ServerAlert(Base):
    """An alert about the server itself (the broker unreachable), one open per kind."""

    __tablename__ = "server_alerts"
    __table_args__ = (
        Index(
            "ux_server_alerts_open_kind",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(256), default="")
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


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

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
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
