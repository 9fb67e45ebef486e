"""Notifications of alerts: who is told (e-mail recipients and webhooks, per site and alert
kind) and the outbox of deliveries, one row per (alert event, target), written in the same
transaction as the alert change and sent by :mod:`fleet_server.mqtt.notify.worker`."""

from __future__ import annotations

from datetime import datetime

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


class NotificationTarget(Base):
    """An e-mail address or a webhook URL told about some alerts."""

    __tablename__ = "notification_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # a fleet_server.mqtt.notify.vocab.Channel
    address: Mapped[str] = mapped_column(String(512))  # e-mail address or https:// URL
    label: Mapped[str] = mapped_column(String(128), default="")
    site: Mapped[str] = mapped_column(String(128), default="")  # "": every site
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)  # []: every alert kind
    # E-mail only: held between these Paris wall-clock times ("HH:MM"), then one digest.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    digest: Mapped[bool] = mapped_column(Boolean, default=False)  # e-mail: grouped messages
    # E-mail: a summary each morning (counters down, alerts open, calls yesterday).
    summary: Mapped[bool] = mapped_column(Boolean, default=False)
    # Webhooks: the HMAC key that signs each body. A shared secret, so stored as is.
    secret: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NotificationDelivery(Base):
    """One alert event for one target: what it says (a snapshot), and its delivery so far."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # One row per (alert, event, target): an alert raised or cleared is told once each.
        Index("ux_deliveries_event_target", "alert_id", "event", "target_id", unique=True),
        # The worker's query: pending rows due now.
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_target_id", "target_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    target_id: Mapped[int] = mapped_column(
        ForeignKey("notification_targets.id", ondelete="CASCADE")
    )
    alert_id: Mapped[int] = mapped_column(BigInteger)  # no foreign key: the text outlives it
    event: Mapped[str] = mapped_column(String(16))  # a vocab.AlertEvent
    at: Mapped[datetime] = mapped_column(UtcDateTime())  # when the alert was raised/cleared
    device_id: Mapped[str] = mapped_column(String(64))
    device_name: Mapped[str] = mapped_column(String(128), default="")
    site: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16))  # a vocab.DeliveryStatus
    held: Mapped[bool] = mapped_column(Boolean, default=False)  # by quiet hours
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())  # a worker's lease
    last_error: Mapped[str | None] = mapped_column(String(512))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
