"""Output levels remote support may set: the loudspeaker's volume and the screen's
brightness. The ports and their fakes (which remember the level, or refuse like absent
hardware when given a ``refusal``).

Both take a percentage (0–100) and return the one actually set (hardware has steps); where
the hardware does not allow it they raise ``HardwareError`` with a French reason for the
administrator.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from appliance.errors import HardwareError


@runtime_checkable
class SpeakerVolume(Protocol):
    async def set_volume(self, percent: int) -> int: ...


@runtime_checkable
class Backlight(Protocol):
    async def set_brightness(self, percent: int) -> int: ...


class SimulatedVolume:
    """The demo's and the tests' loudspeaker volume."""

    def __init__(self, percent: int = 70, *, refusal: str | None = None) -> None:
        self.percent = percent
        self.refusal = refusal

    async def set_volume(self, percent: int) -> int:
        if self.refusal is not None:
            raise HardwareError(self.refusal)
        self.percent = percent
        return percent


class SimulatedBacklight:
    """The demo's and the tests' screen brightness."""

    def __init__(self, percent: int = 100, *, refusal: str | None = None) -> None:
        self.percent = percent
        self.refusal = refusal

    async def set_brightness(self, percent: int) -> int:
        if self.refusal is not None:
            raise HardwareError(self.refusal)
        self.percent = percent
        return percent
