"""The appliance's exceptions: one root, small specific subclasses."""

from __future__ import annotations

from guichet.errors import DocumentError

__all__ = [
    "ApplianceError",
    "ConfigError",
    "DocumentError",  # shared with the documents contract: guichet.errors
    "HardwareError",
    "OutboxFullError",
]


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or invalid."""


class HardwareError(ApplianceError):
    """A hardware adapter could not do what was asked (its library's error, translated)."""


class OutboxFullError(ApplianceError):
    """The on-disk outbox refused a message (disk full or beyond its bound)."""
