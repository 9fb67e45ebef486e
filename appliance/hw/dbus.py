"""Which D-Bus bus the counter's system services are on: the system bus, or the session bus
when ``DBUS_STARTER_BUS_TYPE=session`` (the tests' private bus, as for RAUC's own client).
Shared by RAUC's installer (``rauc_dbus``) and logind's reboot (``logind``)."""

from __future__ import annotations

import os


def bus_kind(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    return "SESSION" if env.get("DBUS_STARTER_BUS_TYPE") == "session" else "SYSTEM"
