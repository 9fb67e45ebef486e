"""The box's power through systemd: ``systemctl reboot`` asks logind to restart the Pi.

systemd then stops every service in order (the counter says "offline" to the fleet on its
SIGTERM, as on any clean stop). The counter's service runs as its own user: logind lets it
reboot only with a polkit rule granting ``org.freedesktop.login1.reboot`` to that user;
without one ``systemctl`` refuses, and so does this adapter, with the reason.
"""

from __future__ import annotations

import logging
import shutil

from appliance.errors import HardwareError
from appliance.hw.tools import run_tool

logger = logging.getLogger(__name__)

SYSTEMCTL_TIMEOUT_S = 10.0  # logind answers at once; the reboot itself goes on without us


class SystemctlPower:
    """``SystemPower`` on a systemd machine."""

    def __init__(self, systemctl: str = "systemctl") -> None:
        self._systemctl = systemctl

    async def reboot(self) -> None:
        path = shutil.which(self._systemctl)
        if path is None:
            raise HardwareError("redémarrage impossible : systemd (systemctl) est absent")
        try:
            run = await run_tool([path, "reboot"], timeout_s=SYSTEMCTL_TIMEOUT_S)
        except TimeoutError:
            raise HardwareError("le système n'a pas répondu à la demande de redémarrage") from None
        if not run.ok:
            reason = run.reason()
            logger.error("reboot refused", extra={"error": reason or ""})
            raise HardwareError(
                "le système a refusé le redémarrage" + (f" : {reason[:200]}" if reason else "")
            )
        logger.warning("reboot ordered")
