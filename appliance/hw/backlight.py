"""The screen's brightness through the kernel's backlight class: ``/sys/class/backlight/*``
(the official Raspberry Pi touchscreens, DSI panels). HDMI screens have none: their
brightness is on the screen's own buttons, and this adapter says so.

Writing ``brightness`` needs the right to: a udev rule giving the counter's group the file,
and the service's sandbox letting it write there (``ProtectKernelTunables`` makes ``/sys``
read-only); without them the change is refused, with the reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from appliance.errors import HardwareError

BACKLIGHT_ROOT = Path("/sys/class/backlight")


class SysfsBacklight:
    """``Backlight`` on the first device of ``root``."""

    def __init__(self, root: Path = BACKLIGHT_ROOT) -> None:
        self._root = root

    async def set_brightness(self, percent: int) -> int:
        return await asyncio.to_thread(self._set, percent)

    def _set(self, percent: int) -> int:
        try:
            devices = sorted(p for p in self._root.iterdir() if (p / "brightness").exists())
        except OSError:
            devices = []
        if not devices:
            raise HardwareError(
                "la luminosité de cet écran ne se règle pas à distance (aucun rétroéclairage"
                " piloté : écran HDMI ?)"
            )
        device = devices[0]
        try:
            maximum = int((device / "max_brightness").read_text().strip())
            raw = round(percent * maximum / 100)
            (device / "brightness").write_text(f"{raw}\n")
        except PermissionError:
            raise HardwareError(
                f"réglage de la luminosité refusé : pas le droit d'écrire {device / 'brightness'}"
            ) from None
        except (OSError, ValueError) as exc:
            raise HardwareError(f"réglage de la luminosité impossible : {exc}") from None
        return round(raw * 100 / maximum) if maximum else percent
