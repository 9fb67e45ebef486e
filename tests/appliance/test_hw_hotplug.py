"""USB hot-plug: classification and event tracking on synthetic uevents, real pyudev
enumeration, and a real kernel uevent through the netlink monitor."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import pytest

from appliance.hw.ports import HotPlug, UsbChange, UsbDevice
from appliance.hw.ports.hotplug import SimulatedHotPlug
from appliance.hw.udev import (
    PyudevHotPlug,
    Uevent,
    UeventWatcher,
    UsbTracker,
    classify,
    usb_device_from,
)

EVENT_TIMEOUT_S = 5.0
DEV_NULL_UEVENT = Path("/sys/class/mem/null/uevent")  # a harmless device to poke
PRINTER = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"


@pytest.mark.parametrize(
    ("classes", "kind"),
    [
        (["00", "07", "ff"], "printer"),  # an all-in-one: printer and vendor-specific scanner
        (["00", "06"], "scanner"),
        (["ef", "0e", "0e", "01", "01"], "camera"),  # a webcam with a microphone
        (["00", "01", "03"], "audio"),  # a USB headset
        (["00", "ff"], "other"),  # a Wi-Fi dongle
        (["09"], "other"),  # a hub
        (["7", None], "printer"),  # unpadded, and a missing value
    ],
)
def test_classify(classes: list[str | None], kind: str) -> None:
    assert classify(classes) == kind


def test_device_from_sysfs_attributes() -> None:
    device = usb_device_from(
        PRINTER,
        {"PRODUCT": "3f0/5611/100"},
        {
            "idVendor": "03f0",
            "idProduct": "5611",
            "product": "HP DeskJet 2700 ",
            "bDeviceClass": "00",
        },
        ["07", "ff"],
    )
    assert device == UsbDevice(PRINTER, "03f0", "5611", "HP DeskJet 2700", "printer")


def test_device_from_uevent_properties_only() -> None:
    """On removal sysfs is gone: the ids come from PRODUCT, the class from TYPE."""
    device = usb_device_from(PRINTER, {"PRODUCT": "4a9/1909/100", "TYPE": "14/1/0"}, {}, [])
    assert (device.vendor_id, device.product_id, device.kind) == ("04a9", "1909", "camera")


def _event(action: str, path: str, devtype: str, **properties: str) -> Uevent:
    return Uevent(action, path, "usb", devtype, properties)


def test_tracker_announces_a_printer_once_configured_and_recognises_its_removal() -> None:
    tracker = UsbTracker()
    added = _event("add", PRINTER, "usb_device", PRODUCT="3f0/5611/100", TYPE="0/0/0")
    assert tracker.handle(added) is None  # no interfaces yet: wait for "bind"
    assert (
        tracker.handle(_event("add", f"{PRINTER}/1-1:1.0", "usb_interface", INTERFACE="7/1/2"))
        is None
    )
    assert (
        tracker.handle(_event("bind", f"{PRINTER}/1-1:1.0", "usb_interface", INTERFACE="7/1/2"))
        is None
    )
    bound = Uevent(
        "bind", PRINTER, "usb", "usb_device", {"PRODUCT": "3f0/5611/100"},
        {"idVendor": "03f0", "idProduct": "5611", "product": "DeskJet"}, ("07",),
    )  # fmt: skip
    change = tracker.handle(bound)
    assert change is not None
    assert change[0] is UsbChange.ADDED
    assert (change[1].kind, change[1].product) == ("printer", "DeskJet")
    assert tracker.handle(bound) is None  # announced once
    assert tracker.handle(_event("change", PRINTER, "usb_device")) is None
    removed = tracker.handle(_event("remove", PRINTER, "usb_device", PRODUCT="3f0/5611/100"))
    assert removed == (UsbChange.REMOVED, change[1])


def test_tracker_classifies_an_unknown_removal_from_the_interfaces_it_saw() -> None:
    tracker = UsbTracker()
    tracker.handle(_event("add", f"{PRINTER}/1-1:1.0", "usb_interface", INTERFACE="14/1/0"))
    removed = tracker.handle(_event("remove", PRINTER, "usb_device", PRODUCT="46d/825/10"))
    assert removed is not None
    assert (removed[0], removed[1].kind, removed[1].vendor_id) == (
        UsbChange.REMOVED,
        "camera",
        "046d",
    )


def test_tracker_seeded_by_enumeration_knows_present_devices() -> None:
    tracker = UsbTracker()
    webcam = UsbDevice(PRINTER, "046d", "0825", "C270", "camera")
    tracker.seed([webcam])
    assert tracker.handle(_event("bind", PRINTER, "usb_device")) is None
    assert tracker.handle(_event("remove", PRINTER, "usb_device")) == (UsbChange.REMOVED, webcam)


# --- real pyudev --------------------------------------------------------------------------


async def test_real_enumeration_returns_usb_devices() -> None:
    hotplug = PyudevHotPlug(loop=asyncio.get_running_loop())
    assert isinstance(hotplug, HotPlug)
    devices = await hotplug.devices()
    assert isinstance(devices, list)
    for device in devices:  # this CI machine has no USB bus; a laptop has some
        assert len(device.vendor_id) == 4
        assert device.kind in {"printer", "scanner", "camera", "audio", "other"}
    hotplug.close()


async def test_kernel_monitor_receives_a_real_uevent() -> None:
    # The suite runs as root with sysfs (./run test, CI): a uevent can always be triggered.
    assert os.access(DEV_NULL_UEVENT, os.W_OK), "cannot trigger a uevent (needs root and sysfs)"
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[Uevent] = asyncio.Queue()
    threads: list[int] = []

    def on_event(event: Uevent) -> None:
        threads.append(threading.get_ident())
        received.put_nowait(event)

    watcher = UeventWatcher("mem", on_event, loop=loop, source="kernel")
    try:
        await asyncio.to_thread(DEV_NULL_UEVENT.write_text, "change")
        event = await asyncio.wait_for(received.get(), EVENT_TIMEOUT_S)
    finally:
        watcher.close()
    assert (event.action, event.subsystem) == ("change", "mem")
    assert event.path.endswith("/mem/null")
    assert event.properties["DEVNAME"] == "/dev/null"
    assert threads == [threading.get_ident()]  # delivered on the loop's thread


async def test_watch_starts_and_close_stops_the_observer_thread() -> None:
    before = {t.name for t in threading.enumerate()}
    hotplug = PyudevHotPlug(loop=asyncio.get_running_loop(), source="kernel")
    hotplug.watch(lambda change, device: None)
    started = "uevent-usb" in {t.name for t in threading.enumerate()} - before
    hotplug.close()
    assert started, "the kernel monitor did not start (no netlink uevents?)"
    assert "uevent-usb" not in {t.name for t in threading.enumerate()} - before


async def test_watch_without_netlink_logs_and_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A monitor pyudev refuses (here: an unknown source; in a sandbox: netlink denied)."""
    hotplug = PyudevHotPlug(loop=asyncio.get_running_loop(), source="nosuchsource")
    with caplog.at_level(logging.ERROR, logger="appliance.hw.udev"):
        hotplug.watch(lambda change, device: None)
    assert "USB hot-plug disabled" in caplog.text
    hotplug.close()


# --- the fake ---------------------------------------------------------------------------


async def test_simulated_hotplug_delivers_plugs_on_the_loop() -> None:
    hotplug = SimulatedHotPlug(loop=asyncio.get_running_loop())
    assert isinstance(hotplug, HotPlug)
    changes: asyncio.Queue[tuple[UsbChange, UsbDevice]] = asyncio.Queue()
    hotplug.watch(lambda change, device: changes.put_nowait((change, device)))
    scanner = UsbDevice("/sys/sim/1-2", "04a9", "1909", "CanoScan", "scanner")
    await asyncio.to_thread(hotplug.plug, scanner)
    assert await asyncio.wait_for(changes.get(), EVENT_TIMEOUT_S) == (UsbChange.ADDED, scanner)
    assert await hotplug.devices() == [scanner]
    hotplug.unplug(scanner.path)
    assert await asyncio.wait_for(changes.get(), EVENT_TIMEOUT_S) == (UsbChange.REMOVED, scanner)
    assert await hotplug.devices() == []
    hotplug.close()
