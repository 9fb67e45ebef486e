"""The appliance's exceptions: one root, small specific subclasses."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guichet.documents import ErrorCode


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or invalid."""


class HardwareError(ApplianceError):
    """A hardware adapter could not do what was asked (its library's error, translated)."""


class OutboxFullError(ApplianceError):
    """The on-disk outbox refused a message (disk full or beyond its bound)."""


class DocumentError(ApplianceError):
    """A scan or print that cannot go on; ``code`` for machines, ``message`` in French for
    the agent (``guichet.documents.ErrorCode`` values). Never carries document content."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
