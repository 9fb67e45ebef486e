"""The appliance's exceptions: one root, small specific subclasses."""


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or invalid."""


class HardwareError(ApplianceError):
    """A hardware adapter could not do what was asked (its library's error, translated)."""


class OutboxFullError(ApplianceError):
    """The on-disk outbox refused a message (disk full or beyond its bound)."""
