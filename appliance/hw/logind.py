"""A reboot with a parameter, asked of logind over D-Bus (``org.freedesktop.login1``): the
Pi firmware's trial boot is ``reboot(2)`` with the argument ``"0 tryboot"``.

Not ``systemctl reboot --reboot-argument=…``: systemctl writes ``/run/systemd/reboot-param``
itself before it asks logind, which only root may (« Failed to write reboot parameter file:
Permission denied » for the counter's user, found in qemu). logind's ``SetRebootParameter``
writes it on the caller's behalf when polkit allows ``org.freedesktop.login1.set-reboot-
parameter``, then ``Reboot`` (``org.freedesktop.login1.reboot``): both granted to the
counter's user by the image's rule (``image/layers/counter/layer.toml``).
"""

from __future__ import annotations

import asyncio
import logging

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call
from jeepney.io.asyncio import open_dbus_router

from appliance.hw.dbus import bus_kind

logger = logging.getLogger(__name__)

LOGIN1 = DBusAddress(
    "/org/freedesktop/login1",
    bus_name="org.freedesktop.login1",
    interface="org.freedesktop.login1.Manager",
)


class RebootRefusedError(Exception):
    """logind (or polkit through it) said no; its words."""


async def reboot_with_parameter(parameter: str, timeout_s: float) -> None:
    """Set the reboot parameter, then reboot (not interactive: no polkit prompt)."""
    async with asyncio.timeout(timeout_s), open_dbus_router(bus=bus_kind()) as router:
        for member, signature, args in (
            ("SetRebootParameter", "s", (parameter,)),
            ("Reboot", "b", (False,)),
        ):
            call = new_method_call(LOGIN1, member, signature, args)
            reply = await router.send_and_get_reply(call)
            if reply.header.message_type is MessageType.error:
                said = " ".join(str(part) for part in reply.body) or "sans message"
                name = reply.header.fields.get(HeaderFields.error_name, "")
                raise RebootRefusedError(f"{member} : {said} ({name})")
    logger.info("reboot asked of logind", extra={"parameter": parameter})
