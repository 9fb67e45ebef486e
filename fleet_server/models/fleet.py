"""What the counters report and what is made of it: the counters' rows (denormalised
for the dashboard), status history, telemetry, events, survey answers, commands, alerts,
and the server's own link to the broker and its alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet_server.models.base import Base, UtcDateTime
from guichet.contract import DeviceState


class Device(Base):
    """A counter, created on its first message; one row per counter with its latest state."""

    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_site_id", "site", "id"),)  # the fleet table's order

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(128), default="")
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
    # Every screen said aloud (issue 15): None follows the counter's own configuration.
    speech: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
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
    # The latest software update progress (issue 13, guichet.updates), for the dashboard.
    update_state: Mapped[str | None] = mapped_column(String(16))
    update_release: Mapped[str | None] = mapped_column(String(64))
    update_percent: Mapped[int | None] = mapped_column(Integer)
    update_reason: Mapped[str | None] = mapped_column(String(512))
    update_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # received by the server


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
    """A remote command sent to a counter and its acknowledgement (the first one only: a
    replayed ack changes nothing)."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_device_sent", "device_id", "sent_at"),)

    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ok: Mapped[bool | None] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    # Remote support's actions (guichet.actions): past this, no ack means no answer; who
    # asked; the self-test's checks as the counter answered them (name, outcome, detail).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    actor: Mapped[str | None] = mapped_column(String(128))
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # A test call's figures, stored by the server's answerer (calls/line_figures.py).
    measurements: Mapped[dict[str, Any] | None] = mapped_column(JSON)


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
        # The alerts page's two lists, newest first (keyset on these columns).
        Index(
            "ix_alerts_open_raised",
            "raised_at",
            "id",
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index(
            "ix_alerts_cleared",
            "cleared_at",
            "id",
            sqlite_where=text("cleared_at IS NOT NULL"),
            postgresql_where=text("cleared_at IS NOT NULL"),
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


class SiteThreshold(Base):
    """A site's own delay before an offline or silent counter raises its alert (minutes);
    a site without a row uses ``alert_offline_after_min``."""

    __tablename__ = "site_thresholds"

    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    offline_after_min: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
