"""The fleet server's exceptions: one root, small specific subclasses."""


class FleetError(Exception):
    """Root of every error the fleet server raises on purpose."""


class SettingsError(FleetError):
    """The server's settings are invalid or unsafe (a default secret outside demo mode)."""
