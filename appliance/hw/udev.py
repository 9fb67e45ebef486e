"""USB hot-plug over pyudev: enumerate USB devices and watch them come and go.

The kernel announces a USB device with ``add`` before its interfaces exist, then an
``add``/``bind`` per interface, then ``bind`` for the device once it is configured: only
then can it be classified (a printer is a printer by its *interface* class). So a device
is announced on the first ``add``/``bind`` whose sysfs shows interfaces, and forgotten on
``remove``, when sysfs is already gone and its kind comes from what was seen before.

Where udevd runs, the monitor listens to udev's processed events; where it does not
(containers, CI), straight to the kernel's. pyudev's ``MonitorObserver`` thread reads the
netlink socket and reads sysfs; the events reach the loop as plain ``Uevent`` values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.errors import HardwareError
from appliance.hw._bridge import post_to_loop, short_error
from appliance.hw.ports import UsbChange, UsbDevice

if TYPE_CHECKING:
    from pyudev import Device

logger = logging.getLogger(__name__)

UDEVD_CONTROL = Path("/run/udev/control")  # udevd's socket: present iff udevd runs
# USB class codes (usb.org "Defined Class Codes"), most telling first: an all-in-one
# scanner-printer counts as a printer (SANE reports its scanner), a webcam's microphone
# interface does not make it an audio device. Vendor-specific (ff) stays "other": Wi-Fi
# dongles and serial adapters use it as much as scanners do.
USB_CLASS_KINDS: tuple[tuple[str, str], ...] = (
    ("07", "printer"),
    ("06", "scanner"),  # still image (PTP/scanners)
    ("0e", "camera"),  # video
    ("01", "audio"),
)
USB_DEVICE = "usb_device"
USB_INTERFACE = "usb_interface"


def classify(classes: Iterable[str | None]) -> str:
    """The kind of a USB device from its device and interface class codes (hex)."""
    seen = {c.strip().lower().zfill(2) for c in classes if c}
    return next((kind for code, kind in USB_CLASS_KINDS if code in seen), "other")


def _hex4(value: str | None) -> str:
    return value.strip().lower().zfill(4) if value else "0000"


def usb_device_from(
    path: str,
    properties: Mapping[str, str],
    attributes: Mapping[str, str],
    interface_classes: Iterable[str],
) -> UsbDevice:
    """Build a ``UsbDevice`` from sysfs attributes, falling back to uevent properties."""
    product_prop = properties.get("PRODUCT", "").split("/")  # "46d/825/10": vid/pid/bcd
    vendor = attributes.get("idVendor") or (product_prop[0] if len(product_prop) > 1 else None)
    product_id = attributes.get("idProduct") or (product_prop[1] if len(product_prop) > 1 else None)
    type_prop = properties.get("TYPE", "").split("/")  # bDeviceClass/SubClass/Protocol, decimal
    device_class = attributes.get("bDeviceClass") or (
        f"{int(type_prop[0]):02x}" if type_prop[0].isdigit() else None
    )
    name = attributes.get("product") or properties.get("ID_MODEL")
    return UsbDevice(
        path=path,
        vendor_id=_hex4(vendor),
        product_id=_hex4(product_id),
        product=name.strip()[:128] if name else None,
        kind=classify([device_class, *interface_classes]),
    )


@dataclass(frozen=True, slots=True)
class Uevent:
    """One netlink event, copied out of pyudev in its thread."""

    action: str  # add, bind, change, unbind, remove
    path: str  # sysfs path
    subsystem: str | None
    device_type: str | None
    properties: Mapping[str, str]
    attributes: Mapping[str, str] = field(default_factory=dict)
    interface_classes: tuple[str, ...] = ()


@dataclass
class UsbTracker:
    """Turns the kernel's USB uevents into plugged/unplugged changes (loop side, pure)."""

    known: dict[str, UsbDevice] = field(default_factory=dict)
    interfaces: dict[str, set[str]] = field(default_factory=dict)

    def seed(self, devices: Iterable[UsbDevice]) -> None:
        """Remember devices found by enumeration (events already seen take precedence)."""
        for device in devices:
            self.known.setdefault(device.path, device)

    def handle(self, event: Uevent) -> tuple[UsbChange, UsbDevice] | None:
        if event.device_type == USB_INTERFACE:
            self._note_interface(event)
            return None
        if event.device_type != USB_DEVICE:
            return None
        if event.action == "remove":
            seen = self.interfaces.pop(event.path, set())
            gone = self.known.pop(event.path, None) or usb_device_from(
                event.path, event.properties, {}, seen
            )
            return UsbChange.REMOVED, gone
        if event.action in ("add", "bind") and event.path not in self.known:
            classes = set(event.interface_classes) | self.interfaces.get(event.path, set())
            if not classes:
                return None  # not configured yet: its "bind" follows
            device = usb_device_from(event.path, event.properties, event.attributes, classes)
            self.known[event.path] = device
            return UsbChange.ADDED, device
        return None

    def _note_interface(self, event: Uevent) -> None:
        interface = event.properties.get("INTERFACE", "").split("/")  # class/sub/proto, decimal
        parent = event.path.rsplit("/", 1)[0]
        if event.action in ("add", "bind") and interface[0].isdigit():
            self.interfaces.setdefault(parent, set()).add(f"{int(interface[0]):02x}")


def monitor_source() -> str:
    """ "udev" where udevd runs (richer, rule-processed events), else "kernel"."""
    return "udev" if UDEVD_CONTROL.exists() else "kernel"


def _string_map(raw: Iterable[tuple[str, object]]) -> dict[str, str]:
    return {str(k): v.decode(errors="replace") if isinstance(v, bytes) else str(v) for k, v in raw}


def _read_attributes(device: Device, names: Iterable[str]) -> dict[str, str]:
    found = ((name, device.attributes.get(name)) for name in names)
    return _string_map((name, value) for name, value in found if value is not None)


def uevent_from_pyudev(device: Device) -> Uevent:
    """Blocking (reads sysfs): copy what the tracker needs out of a ``pyudev.Device``."""
    action = str(device.action or "add")  # enumerated devices have no action
    attributes: dict[str, str] = {}
    interface_classes: list[str] = []
    if action != "remove" and device.device_type == USB_DEVICE:
        attributes = _read_attributes(device, ("idVendor", "idProduct", "product", "bDeviceClass"))
        for child in device.children:
            if child.device_type == USB_INTERFACE:
                interface_classes.extend(_read_attributes(child, ("bInterfaceClass",)).values())
    return Uevent(
        action=action,
        path=str(device.sys_path),
        subsystem=device.subsystem,
        device_type=device.device_type,
        properties=_string_map(dict(device.properties).items()),
        attributes=attributes,
        interface_classes=tuple(interface_classes),
    )


class UeventWatcher:
    """A netlink monitor on one subsystem; each event reaches ``on_event`` on the loop."""

    def __init__(
        self,
        subsystem: str,
        on_event: Callable[[Uevent], None],
        *,
        loop: asyncio.AbstractEventLoop,
        source: str | None = None,
    ) -> None:
        try:
            import pyudev
        except ImportError as exc:
            raise HardwareError("pyudev is not installed") from exc
        self._loop = loop
        self._on_event = on_event
        self.source = source or monitor_source()
        try:
            monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=self.source)
            monitor.filter_by(subsystem)
            monitor.start()  # receive from now on, even before the thread runs
            self._observer = pyudev.MonitorObserver(
                monitor, callback=self._in_thread, name=f"uevent-{subsystem}"
            )
            self._observer.start()
        except (OSError, ValueError) as exc:  # netlink refused; a source pyudev rejects
            raise HardwareError(f"cannot watch {subsystem} uevents: {short_error(exc)}") from exc
        logger.debug("watching %s uevents from %s", subsystem, self.source)

    def _in_thread(self, device: Device) -> None:
        try:
            event = uevent_from_pyudev(device)
        except Exception:  # one unreadable device must not kill the observer thread
            logger.exception("unreadable uevent for %s", getattr(device, "sys_path", "?"))
            return
        post_to_loop(self._loop, self._on_event, event)

    def close(self) -> None:
        """Stop the observer thread; no callback arrives after this returns."""
        self._observer.stop()


class PyudevHotPlug:
    """USB devices through pyudev: enumeration, and plug/unplug on the loop."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, source: str | None = None) -> None:
        try:
            import pyudev
        except ImportError as exc:
            raise HardwareError("pyudev is not installed") from exc
        self._context = pyudev.Context()
        self._loop = loop
        self._source = source
        self._tracker = UsbTracker()
        self._watcher: UeventWatcher | None = None
        self._callback: Callable[[UsbChange, UsbDevice], None] | None = None
        self._seeding: asyncio.Future[list[Uevent]] | None = None

    async def devices(self) -> list[UsbDevice]:
        """The USB devices present now (also what later unplugs are recognised by)."""
        events = await asyncio.to_thread(self._enumerate)
        devices = [
            usb_device_from(e.path, e.properties, e.attributes, e.interface_classes) for e in events
        ]
        self._tracker.seed(devices)
        return devices

    def _enumerate(self) -> list[Uevent]:
        found = self._context.list_devices(subsystem="usb", DEVTYPE=USB_DEVICE)
        return [uevent_from_pyudev(device) for device in found]

    def watch(self, callback: Callable[[UsbChange, UsbDevice], None]) -> None:
        """Start watching. Where the platform gives no uevents, log it and deliver none:
        a counter without hot-plug events still works."""
        self._callback = callback
        if self._watcher is not None:
            return
        try:
            self._watcher = UeventWatcher(
                "usb", self._on_uevent, loop=self._loop, source=self._source
            )
        except HardwareError as exc:
            logger.error("USB hot-plug disabled: %s", exc)
            return
        # Learn what is already plugged, so that its unplugging is recognised.
        self._seeding = self._loop.run_in_executor(None, self._enumerate)
        self._seeding.add_done_callback(self._seed_from)

    def _seed_from(self, done: asyncio.Future[list[Uevent]]) -> None:
        if done.cancelled():
            return
        if (exc := done.exception()) is not None:
            logger.warning("USB enumeration failed: %s", short_error(exc))
            return
        self._tracker.seed(
            usb_device_from(e.path, e.properties, e.attributes, e.interface_classes)
            for e in done.result()
        )

    def _on_uevent(self, event: Uevent) -> None:
        change = self._tracker.handle(event)
        if change is None or self._callback is None:
            return
        logger.info("USB %s: %s %s", change[0].value, change[1].kind, change[1].product or "")
        self._callback(*change)

    def close(self) -> None:
        if self._seeding is not None:
            self._seeding.cancel()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
