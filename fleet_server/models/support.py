"""Remote support's files from a counter (issue 14, items 2 and 3): a screenshot or a piece of
its logs, uploaded over HTTPS in answer to one action (its ``request_id``), kept until
``expires_at`` (``GUICHET_SUPPORT_RETENTION_H``) and purged then."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fleet_server.models.base import Base, UtcDateTime


class SupportUpload(Base):
    """One file a counter uploaded for one action; at most one per action (its key)."""

    __tablename__ = "support_uploads"

    request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("commands.request_id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    media_type: Mapped[str] = mapped_column(String(64))  # guichet.actions' *_TYPE
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
