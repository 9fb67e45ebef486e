"""logind's two reboot methods on a private D-Bus session bus (``dbus-daemon``), for the
RAUC adapter's trial reboot: logind itself needs systemd as PID 1, which this machine does
not run. It owns ``org.freedesktop.login1`` and answers ``SetRebootParameter`` and ``Reboot``
as logind does when polkit allows, or with ``AccessDenied`` for the one named by
``refuse``; the qemu check (``./run update-check``) runs the real logind and polkit."""

from __future__ import annotations

import threading
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

BUS_NAME = "org.freedesktop.login1"
MEMBERS = {"SetRebootParameter", "Reboot"}


class LogindStandIn:
    def __init__(self, address: str) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.refuse: str | None = None
        self._connection: DBusConnection = open_dbus_connection(bus=address)
        reply = self._connection.send_and_get_reply(message_bus.RequestName(BUS_NAME))
        assert reply.body == (1,), reply.body  # primary owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._connection.receive(timeout=0.2)
            except TimeoutError:
                continue
            except OSError:
                return
            if message.header.message_type is not MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member not in MEMBERS:
                reply = new_error(message, "org.freedesktop.DBus.Error.UnknownMethod")
            else:
                self.calls.append((member, tuple(message.body)))
                if member == self.refuse:
                    reply = new_error(
                        message, "org.freedesktop.DBus.Error.AccessDenied", "s", ("Access denied",)
                    )
                else:
                    reply = new_method_return(message)
            self._connection.send(reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._connection.close()
