"""The hardware ports: small interfaces the rest of the appliance talks to.

One module per port (or group of ports), each with its one fake beside it, as gpiozero keeps
``pins/mock.py`` beside ``pins/__init__.py``; one adapter package or module per library
(``appliance.hw.gpio``, ``appliance.hw.cups``, ``appliance.hw.sane``, ``appliance.hw.camera``…).
Nothing here imports a hardware library. Every method that can block is ``async``; the
adapters run the blocking library call in a thread.

The ports and their value types are re-exported here: ``from appliance.hw.ports import Button``.
"""

from appliance.hw.ports.camera import Camera
from appliance.hw.ports.controls import Button, LightPattern, StatusLight
from appliance.hw.ports.hotplug import HotPlug, UsbChange, UsbDevice
from appliance.hw.ports.keyboard import EditKey, Keyboard, KeyEvent, KeyPressed, TextTyped
from appliance.hw.ports.levels import Backlight, SpeakerVolume
from appliance.hw.ports.media import (
    AudioSink,
    AudioSource,
    FrameSource,
    MediaDevices,
    VideoRung,
)
from appliance.hw.ports.printer import DocumentPrinter, Printer, PrintJobStatus
from appliance.hw.ports.scanner import DocumentScanner, ScannedPage, Scanner, ScanSettings
from appliance.hw.ports.screen import (
    OutOfServiceReason,
    Screen,
    ScreenCapture,
    ScreenInfo,
    ScreenState,
)
from appliance.hw.ports.speaker import Speaker
from appliance.hw.ports.system import SystemPower, SystemProbe, SystemSnapshot
from appliance.hw.ports.updater import (
    RemoteBundle,
    SlotStatus,
    Updater,
    UpdateRefusedError,
    UpdaterError,
)

__all__ = [
    "AudioSink",
    "AudioSource",
    "Backlight",
    "Button",
    "Camera",
    "DocumentPrinter",
    "DocumentScanner",
    "EditKey",
    "FrameSource",
    "HotPlug",
    "KeyEvent",
    "KeyPressed",
    "Keyboard",
    "LightPattern",
    "MediaDevices",
    "OutOfServiceReason",
    "PrintJobStatus",
    "Printer",
    "RemoteBundle",
    "ScanSettings",
    "ScannedPage",
    "Scanner",
    "Screen",
    "ScreenCapture",
    "ScreenInfo",
    "ScreenState",
    "SlotStatus",
    "Speaker",
    "SpeakerVolume",
    "StatusLight",
    "SystemPower",
    "SystemProbe",
    "SystemSnapshot",
    "TextTyped",
    "UpdateRefusedError",
    "Updater",
    "UpdaterError",
    "UsbChange",
    "UsbDevice",
    "VideoRung",
]
