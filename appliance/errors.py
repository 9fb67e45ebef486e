"""The appliance's exceptions: one root, small specific subclasses."""

from __future__ import annotations

from guichet.errors import DocumentError

__all__ = [
    "ApplianceError",
    "ConfigError",
    "DocumentError",  # shared with the documents contract: guichet.errors
    "HardwareError",
    "OutboxDiskError",
    "OutboxError",
    "SelfTestError",
]


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or invalid."""


class HardwareError(ApplianceError):
    """A hardware adapter could not do what was asked (its library's error, translated)."""


class ScreenshotRefusedError(ApplianceError):
    """The screen showed a citizen's moment (``state``) when asked: no picture was taken."""

    def __init__(self, state: str) -> None:
        super().__init__(f"screenshot refused while the screen shows {state}")
        self.state = state


class OutboxError(ApplianceError):
    """The on-disk outbox failed. (It never refuses a message for its bound: beyond it, the
    oldest expendable messages are dropped and counted.)"""


class OutboxDiskError(OutboxError):
    """The on-disk outbox could not store a message: disk full, read-only or failing."""


class SelfTestError(ApplianceError):
    """A self-test check failed; the message says what happened, in French."""
