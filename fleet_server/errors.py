"""The fleet server's exceptions: one root, small specific subclasses."""


class FleetError(Exception):
    """Root of every error the fleet server raises on purpose."""


class SettingsError(FleetError):
    """The server's settings are invalid or unsafe (a default secret outside demo mode)."""


class UpdateError(FleetError):
    """A software update refused (issue 13); the message is French, for the administrator."""


class RolloutError(UpdateError):
    """A rollout's action refused in its state, or a wave that cannot be planned."""


class UnknownRolloutError(RolloutError):
    """The rollout, or the release a new rollout names, does not exist."""


class UnknownTargetError(RolloutError):
    """A wave names a site or a counter that no counter in service has or is."""


class NightWindowError(RolloutError):
    """A rollout's night window is half given, empty, or shorter than an update."""


class BundleError(UpdateError):
    """An uploaded bundle refused: signature, manifest, version or compatible string."""
