"""Private listening (issue 15): where the call's audio goes, and the headset that moves it.

``AudioRouting`` is plain shared state, not an adapter: the app feeds it the hot-plug port's
USB changes and, at start, the devices already there (a USB *audio* device plugged in is
taken for a headset; unplugged, the speakers again), the call's loudspeaker
(``appliance/hw/audio/routed.py``) plays to whatever it says now, the telemetry reports its
route and the call agent tells the screen. The ALSA device of a headset comes from
``device_of`` (the adapter's: the sound card under the USB device's sysfs path, which the
kernel makes a moment after the USB device: asked each time the loudspeaker opens, never
cached), so this module reads nothing itself.

The Raspberry Pi's own 3.5 mm jack cannot sense a plug; a headset on a USB sound card, or a
USB headset, can (docs/technicien.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.hw.ports.hotplug import UsbChange, UsbDevice
from guichet.contract import AudioRoute

logger = logging.getLogger(__name__)

HEADSET_KIND = "audio"  # the hot-plug port's kind of a USB audio device


@dataclass
class AudioRouting:
    """The call's audio route now; listeners hear each change (on the loop)."""

    # A headset's ALSA device from its USB device (None: no sound card for it, or not yet).
    device_of: Callable[[UsbDevice], str | None] = field(default=lambda usb: "default")
    route: AudioRoute = AudioRoute.SPEAKERS
    headset: UsbDevice | None = None  # the headset plugged in
    _listeners: list[Callable[[AudioRoute], None]] = field(default_factory=list)

    def headset_device(self) -> str | None:
        """The ALSA device the headset plays on now; None without one (or its sound card is
        not there yet)."""
        return self.device_of(self.headset) if self.headset is not None else None

    def when_changed(self, listener: Callable[[AudioRoute], None]) -> None:
        self._listeners.append(listener)

    def usb_changed(self, change: UsbChange, usb: UsbDevice) -> None:
        """A USB device came or went (the hot-plug port's callback, on the loop)."""
        if usb.kind != HEADSET_KIND:
            return
        if change is UsbChange.ADDED and self.headset is None:
            self.headset = usb
            self._set(AudioRoute.HEADSET)
        elif change is UsbChange.REMOVED and self.headset and usb.path == self.headset.path:
            self.headset = None
            self._set(AudioRoute.SPEAKERS)

    def _set(self, route: AudioRoute) -> None:
        if route is self.route:
            return
        logger.info("call audio now on the %s", route.value)
        self.route = route
        for listener in list(self._listeners):
            listener(route)
