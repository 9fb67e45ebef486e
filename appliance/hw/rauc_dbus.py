"""RAUC's installer over D-Bus (``de.pengutronix.rauc.Installer``, RAUC's primary interface),
through jeepney: ``InstallBundle`` with a local bundle or an HTTPS URL that RAUC *streams*
(HTTP range requests; with the bundle's adaptive block-hash index it fetches only the blocks
neither slot already has, docs/updates.md), then the ``Progress`` property until the
``Completed`` signal, and ``LastError`` when it failed.

Over D-Bus rather than ``rauc install``: the download's credentials (an ``Authorization``
header) travel in the call's arguments, never in a command line other users of the box could
read in ``/proc``. The bus is the system bus, or the session bus when
``DBUS_STARTER_BUS_TYPE=session`` (the tests' private bus), as for RAUC's own client.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import Any

from jeepney import DBusAddress, MatchRule, MessageType, Properties, message_bus, new_method_call
from jeepney.io.asyncio import Proxy, open_dbus_router

from appliance.hw.dbus import bus_kind
from appliance.hw.ports.updater import BundleSource, RemoteBundle, UpdaterError

logger = logging.getLogger(__name__)

BUS_NAME = "de.pengutronix.rauc"
INSTALLER = DBusAddress("/", bus_name=BUS_NAME, interface="de.pengutronix.rauc.Installer")
PROPERTIES = "org.freedesktop.DBus.Properties"


def basic_authorization(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Authorization: Basic {token}"


def install_call(source: BundleSource) -> tuple[str, dict[str, tuple[str, Any]]]:
    """``InstallBundle``'s two arguments: the source and its options (a{sv})."""
    if not isinstance(source, RemoteBundle):
        return str(source), {}
    args: dict[str, tuple[str, Any]] = {}
    if source.username is not None and source.password is not None:
        args["http-headers"] = ("as", [basic_authorization(source.username, source.password)])
    if source.ca_file is not None:
        args["tls-ca"] = ("s", str(source.ca_file))
    return source.url, args


def progress_of(changed: dict[str, tuple[str, Any]]) -> tuple[int, str] | None:
    """A ``PropertiesChanged`` dict → (percent, RAUC's words) when it carries ``Progress``."""
    entry = changed.get("Progress")
    if entry is None:
        return None
    percent, message, _depth = entry[1]
    return max(0, min(100, int(percent))), str(message)


async def dbus_install(
    source: BundleSource,
    progress: Callable[[int, str], None],
    error: Callable[[str], UpdaterError],
    timeout_s: float,
) -> None:
    """Install through RAUC's service; ``error`` turns RAUC's words into the error raised."""
    where, args = install_call(source)
    async with open_dbus_router(bus=bus_kind()) as router:
        bus = Proxy(message_bus, router)
        completed = MatchRule(type="signal", interface=INSTALLER.interface, member="Completed")
        changed = MatchRule(type="signal", interface=PROPERTIES, member="PropertiesChanged",
                            path="/")  # fmt: skip
        await bus.AddMatch(completed)
        await bus.AddMatch(changed)
        with router.filter(completed) as done, router.filter(changed) as changes:
            call = new_method_call(INSTALLER, "InstallBundle", "sa{sv}", (where, args))
            reply = await router.send_and_get_reply(call)
            if reply.header.message_type is MessageType.error:
                said = " ".join(str(part) for part in reply.body) or "sans message"
                raise error(said)
            relay = _Relay(progress)
            async with asyncio.timeout(timeout_s):
                result = await _until_completed(done, changes, relay)
        # The last Progress change may reach us after Completed: its value, read once more.
        last_step = await router.send_and_get_reply(Properties(INSTALLER).get("Progress"))
        if last_step.header.message_type is not MessageType.error and last_step.body:
            relay({"Progress": last_step.body[0]})
        if result != 0:
            last = await router.send_and_get_reply(Properties(INSTALLER).get("LastError"))
            said = str(last.body[0][1]) if last.body else "sans message"
            logger.error("rauc install failed", extra={"error": said[-1000:]})
            raise error(said)


class _Relay:
    """Installer progress to ``progress``, each step once (a step read again is dropped)."""

    def __init__(self, progress: Callable[[int, str], None]) -> None:
        self._progress = progress
        self._last: tuple[int, str] | None = None

    def __call__(self, values: dict[str, tuple[str, Any]]) -> None:
        step = progress_of(values)
        if step is not None and step != self._last:
            self._last = step
            self._progress(*step)

    def signal(self, message: Any) -> None:
        """A ``PropertiesChanged`` signal: its installer ``Progress``, if any."""
        interface, values, _invalidated = message.body
        if interface == INSTALLER.interface:
            self(values)


async def _until_completed(
    done: asyncio.Queue[Any], changes: asyncio.Queue[Any], relay: _Relay
) -> int:
    while True:
        finished = asyncio.ensure_future(done.get())
        moved = asyncio.ensure_future(changes.get())
        ready, pending = await asyncio.wait({finished, moved}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if moved in ready:
            relay.signal(moved.result())
        if finished in ready:
            while not changes.empty():  # the last steps may have come with the signal
                relay.signal(changes.get_nowait())
            return int(finished.result().body[0])
