"""Software updates (issue 13, docs/updates.md): uploaded releases, rollouts and each
counter's update in a rollout. The pure decisions are in ``fleet_server.updates``; each
counter's latest progress is also denormalised onto ``devices`` (``update_*``) for the
dashboard."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet_server.models.base import Base, UtcDateTime


class Release(Base):
    """An uploaded bundle, checked by ``fleet_server.updates.bundle.check_upload``."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    compatible: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(256))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str | None] = mapped_column(String(512))
    adaptive: Mapped[bool] = mapped_column(Boolean, default=False)
    path: Mapped[str] = mapped_column(String(1024))  # the bundle file on the server
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(128))


class RolloutRecord(Base):
    """A rollout as saved between two ``fleet_server.updates.rollout.step`` calls."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16), index=True)  # RolloutState
    wave_specs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # as the admin wrote them
    waves: Mapped[list[list[str]]] = mapped_column(JSON)  # planned once, at the start
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    wave_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    max_failures: Mapped[int | None] = mapped_column(Integer)
    max_failure_pct: Mapped[float | None] = mapped_column(Float)
    wave_timeout_s: Mapped[int] = mapped_column(Integer)
    margin_s: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[int] = mapped_column(Integer)
    night_start: Mapped[time | None] = mapped_column(Time)  # Paris wall clock
    night_end: Mapped[time | None] = mapped_column(Time)
    failures_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(Text)  # French: why it stopped or ended
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))


class CounterUpdateRecord(Base):
    """One counter in one rollout: its order and the last progress it reported."""

    __tablename__ = "counter_updates"
    __table_args__ = (UniqueConstraint("rollout_id", "device_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    release: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the order's command
    ordered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state: Mapped[str | None] = mapped_column(String(16))  # UpdateState; None: no order taken
    percent: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(512))
    since: Mapped[datetime | None] = mapped_column(UtcDateTime())  # received by the server
