"""The loudspeaker's volume through ALSA's mixer: ``amixer sset <control> <percent>%``.

``amixer`` (alsa-utils) is run, not linked: one short command per change, in a subprocess
that never blocks the loop. Refused clearly when alsa-utils is absent or the card has no
such control (an HDMI screen's speakers without a mixer, for instance).
"""

from __future__ import annotations

import re
import shutil

from appliance.errors import HardwareError
from appliance.hw.tools import run_tool

AMIXER_TIMEOUT_S = 5.0
DEFAULT_CONTROL = "Master"  # Raspberry Pi OS's headphone jack names its control "PCM"
_PERCENT = re.compile(r"\[(\d{1,3})%\]")


class AmixerVolume:
    """``SpeakerVolume`` on an ALSA card (``card``: its index or name; None, the default)."""

    def __init__(
        self, control: str = DEFAULT_CONTROL, card: str | None = None, amixer: str = "amixer"
    ) -> None:
        self._control = control
        self._card = card
        self._amixer = amixer

    async def set_volume(self, percent: int) -> int:
        path = shutil.which(self._amixer)
        if path is None:
            raise HardwareError("réglage du volume impossible : amixer (alsa-utils) est absent")
        card = ["-c", self._card] if self._card is not None else []
        args = [path, *card, "sset", self._control, f"{percent}%"]
        try:
            run = await run_tool(args, timeout_s=AMIXER_TIMEOUT_S)
        except TimeoutError:
            raise HardwareError("le mixeur audio n'a pas répondu") from None
        if not run.ok:
            reason = run.reason()
            raise HardwareError(
                f"pas de réglage « {self._control} » sur la carte son"
                + (f" ({reason[:160]})" if reason else "")
            )
        levels = _PERCENT.findall(run.stdout.decode(errors="replace"))
        return int(levels[0]) if levels else percent
