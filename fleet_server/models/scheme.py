"""The scheme: services, timetables (weekly rules, permanences, exceptions),
appointments, questionnaire versions, and the call log."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Time,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet_server.models.base import Base, UtcDateTime


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
        # The call log's filters (its order is requested_at, id: the keyset).
        Index("ix_calls_site_requested", "site", "requested_at"),
        Index("ix_calls_end_reason_requested", "end_reason", "requested_at"),
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
    # The counter's quality summary from its ``call_ended`` event (``guichet/quality.py``,
    # docs/call-quality.md); all None for a call from an older counter or not connected.
    measured_s: Mapped[float | None] = mapped_column(Float)
    video_kbps_avg: Mapped[float | None] = mapped_column(Float)
    video_kbps_min: Mapped[float | None] = mapped_column(Float)
    loss_pct: Mapped[float | None] = mapped_column(Float)
    rtt_ms: Mapped[float | None] = mapped_column(Float)
    freezes: Mapped[int | None] = mapped_column(Integer)
    frozen_s: Mapped[float | None] = mapped_column(Float)
    rung_steps: Mapped[int | None] = mapped_column(Integer)
    lowest_rung: Mapped[str | None] = mapped_column(String(16))
    audio_gaps_pct: Mapped[float | None] = mapped_column(Float)
