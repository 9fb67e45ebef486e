"""Choose and build the hardware adapters from the configuration (composition root part).

``appliance/app.py`` calls ``build_hardware`` once at start and ``Hardware.close()`` on
the way out. This is the only place that decides between the real library, a simulation
and "none"; everything else sees only the ports.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass, field

from appliance.config import ApplianceConfig, HardwareSection
from appliance.hw.absent import AbsentCamera, AbsentPrinter, AbsentScanner, AbsentScreen
from appliance.hw.alsa_mixer import AmixerVolume
from appliance.hw.backlight import SysfsBacklight
from appliance.hw.camera.presence import Picamera2Camera, V4l2Camera
from appliance.hw.cups.printer import CupsPrinter
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from appliance.hw.gpio.pins import make_pin_factory
from appliance.hw.ports import (
    Button,
    Camera,
    HotPlug,
    Keyboard,
    MediaDevices,
    Printer,
    Scanner,
    Screen,
    Speaker,
    StatusLight,
    SystemProbe,
)
from appliance.hw.ports.camera import SimulatedCamera
from appliance.hw.ports.controls import SimulatedButton, SimulatedLight
from appliance.hw.ports.headset import AudioRouting
from appliance.hw.ports.hotplug import SimulatedHotPlug
from appliance.hw.ports.levels import Backlight, SimulatedBacklight, SimulatedVolume, SpeakerVolume
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.scanner import SimulatedScanner
from appliance.hw.ports.screen import SimulatedScreen
from appliance.hw.ports.speaker import SilentSpeaker
from appliance.hw.ports.system import SimulatedSystemPower, SimulatedSystemProbe, SystemPower
from appliance.hw.ports.updater import SimulatedUpdater, Updater
from appliance.hw.power import SystemctlPower
from appliance.hw.rauc import RaucUpdater
from appliance.hw.sane.scanner import SaneScanner
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.keyboard import PygameKeyboard
from appliance.hw.speech import EspeakSpeaker
from appliance.hw.system import PsutilSystemProbe
from appliance.hw.udev import PyudevHotPlug

logger = logging.getLogger(__name__)


@dataclass
class Hardware:
    """Every hardware port of one counter."""

    button: Button
    light: StatusLight
    camera: Camera
    printer: Printer
    scanner: Scanner
    hotplug: HotPlug
    system: SystemProbe
    screen: Screen = field(default_factory=AbsentScreen)
    # The call's media endpoints (fresh per call); None when calls are not configured.
    media: MediaDevices | None = None
    # The gpiozero pin factory in use when it is gpiozero's MockFactory (demo, tests):
    # drive its pins (``pin_factory.pin(17).drive_low()``) to press the button.
    pin_factory: object | None = None
    # Extra buttons, in the order of ``[hardware] choice_pins``: one per option on screen.
    choice_buttons: list[Button] = field(default_factory=list)
    speaker: Speaker = field(default_factory=SilentSpeaker)  # the questionnaire read aloud
    # The optional USB keyboard (the citizen types back in a call), read by the pygame
    # screen; None with any other screen.
    keyboard: Keyboard | None = None
    # Where the call's audio goes (private listening); None: always the speakers.
    audio_routing: AudioRouting | None = None
    power: SystemPower = field(default_factory=SimulatedSystemPower)  # remote support's reboot
    updater: Updater = field(default_factory=SimulatedUpdater)  # the A/B system slots
    volume: SpeakerVolume = field(default_factory=SimulatedVolume)  # set from afar
    backlight: Backlight = field(default_factory=SimulatedBacklight)  # set from afar

    def close(self) -> None:
        """Release pins and stop watcher threads; safe to call twice."""
        parts: list[tuple[str, Screen | HotPlug | StatusLight | Button | Speaker | Keyboard]]
        parts = [("keyboard", self.keyboard)] if self.keyboard is not None else []
        parts += [
            ("screen", self.screen),
            ("speaker", self.speaker),
            ("hot-plug", self.hotplug),
            ("light", self.light),
            ("button", self.button),
        ]
        parts += [("choice button", button) for button in self.choice_buttons]
        for name, part in parts:
            try:
                part.close()
            except Exception:
                logger.exception("closing the %s failed", name)


def _buttons(
    hw: HardwareSection, loop: asyncio.AbstractEventLoop, factory: object | None
) -> tuple[Button, list[Button]]:
    """The call button and the extra choice buttons, all on the call button's adapter."""
    made: list[Button] = []
    try:
        for pin in (hw.button_pin, *hw.choice_pins):
            made.append(
                GpiozeroButton(pin, loop=loop, pin_factory=factory)
                if hw.button == "gpiozero"
                else SimulatedButton(loop=loop)
            )
    except BaseException:
        for button in made:  # give the pins back: a retry must not find them reserved
            button.close()
        raise
    return made[0], made[1:]


def _speaker(config: ApplianceConfig) -> Speaker:
    hw = config.hardware
    if hw.speech == "espeak-ng":
        volume = config.accessibility.speech_volume_pct
        return EspeakSpeaker(voice=hw.speech_voice, volume_pct=volume)
    return SilentSpeaker()


def _camera(hw: HardwareSection) -> Camera:
    if hw.camera == "picamera2":
        return Picamera2Camera()
    if hw.camera == "v4l2":
        return V4l2Camera(hw.camera_device)
    if hw.camera in ("simulated", "test_pattern"):
        return SimulatedCamera()
    return AbsentCamera()


def build_media(
    config: ApplianceConfig, routing: AudioRouting | None = None
) -> MediaDevices | None:
    """The call's camera, microphone and loudspeaker factories; None without calls.

    Imported here, not at the top: PyAV is only needed on a counter that makes calls.
    """
    if config.call.server_url is None:
        return None
    from appliance.hw.camera.devices import ConfiguredMedia

    return ConfiguredMedia(config.hardware, routing)


def audio_routing(hw: HardwareSection) -> AudioRouting | None:
    """Private listening: a USB headset takes the call's audio (ALSA, or no loudspeaker at
    all: the demo and tests); None where it cannot (``headset = "none"``, PulseAudio)."""
    if hw.headset == "none" or hw.audio_out == "pulse":
        return None
    if hw.audio_out == "none":
        return AudioRouting(device_of=lambda usb: "null")  # nothing plays: the route alone
    if hw.headset_device != "auto":
        fixed = hw.headset_device
        return AudioRouting(device_of=lambda usb: fixed)
    from appliance.hw.audio.routed import alsa_headset_device

    return AudioRouting(device_of=alsa_headset_device)


def _printer(hw: HardwareSection) -> Printer:
    if hw.printer == "cups":
        return CupsPrinter(hw.printer_queue, server=hw.printer_server)
    if hw.printer == "simulated":
        return SimulatedPrinter()
    return AbsentPrinter()


def _scanner(hw: HardwareSection) -> Scanner:
    if hw.scanner == "sane":
        return SaneScanner(hw.scanner_device)
    if hw.scanner == "simulated":
        return SimulatedScanner(hw.scanner_device)
    return AbsentScanner()


def _screen(hw: HardwareSection) -> Screen:
    if hw.screen == "pygame":
        return PygameScreen(driver=hw.screen_driver, size=hw.screen_size)
    if hw.screen == "simulated":
        return SimulatedScreen()
    return AbsentScreen()


def build_hardware(config: ApplianceConfig, loop: asyncio.AbstractEventLoop) -> Hardware:
    """Build every adapter named by ``config.hardware``; raises ``HardwareError`` if a
    configured library is missing or its pins are unusable."""
    hw = config.hardware
    screen = _screen(hw)  # first: a display that will not open fails before a pin is taken
    try:
        factory = make_pin_factory(hw)
        button, choice_buttons = _buttons(hw, loop, factory)
    except BaseException:
        screen.close()
        raise
    try:
        light: StatusLight = (
            GpiozeroLight(hw.light_pin, pin_factory=factory)
            if hw.light == "gpiozero"
            else SimulatedLight()
        )
        hotplug: HotPlug = (
            PyudevHotPlug(loop=loop) if hw.usb == "pyudev" else SimulatedHotPlug(loop=loop)
        )
    except BaseException:
        for pinned in (button, *choice_buttons):  # give the pins back for a retry
            pinned.close()
        screen.close()
        raise
    system: SystemProbe = (
        PsutilSystemProbe(config.device.data_dir)
        if hw.system == "real"
        else SimulatedSystemProbe(seed=zlib.crc32(config.device.id.encode()))
    )
    routing = audio_routing(hw)
    hardware = Hardware(
        button=button,
        light=light,
        camera=_camera(hw),
        printer=_printer(hw),
        scanner=_scanner(hw),
        hotplug=hotplug,
        system=system,
        screen=screen,
        media=build_media(config, routing),
        audio_routing=routing,
        pin_factory=factory,
        choice_buttons=choice_buttons,
        speaker=_speaker(config),
        keyboard=PygameKeyboard(screen, loop=loop) if isinstance(screen, PygameScreen) else None,
        # The box itself (reboot, volume, brightness) is real wherever its probes are.
        power=SystemctlPower() if hw.system == "real" else SimulatedSystemPower(),
        updater=RaucUpdater() if hw.updater == "rauc" else SimulatedUpdater(),
        volume=AmixerVolume() if hw.system == "real" else SimulatedVolume(),
        backlight=SysfsBacklight() if hw.system == "real" else SimulatedBacklight(),
    )
    logger.info("hardware: %s", hw.model_dump_json())
    return hardware
