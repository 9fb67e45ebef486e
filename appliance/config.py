"""The counter's configuration: one TOML file, validated into frozen models.

Unknown keys are rejected, so a typo never silently falls back to a default. A bad file
raises ``ConfigError`` whose message names the file and the offending key.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from appliance.errors import ConfigError
from guichet import tomlmodel
from guichet.contract import DEVICE_ID_PATTERN
from guichet.errors import ConfigFileError, MqttUrlError
from guichet.mqtt_url import parse_mqtt_url
from guichet.updates import HEALTH_GATE_S

DEFAULT_TELEMETRY_INTERVAL_S = 30
DEFAULT_KEEPALIVE_S = 30  # the broker declares a silent counter dead after 1.5 × this
DEFAULT_OUTBOX_MAX_MESSAGES = 100_000  # ~1 KB each: 100 MB, weeks of events offline


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceSection(_Section):
    id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    site: str = Field(min_length=1, max_length=128)
    name: str = Field(default="Guichet", min_length=1, max_length=128)
    data_dir: Path = Path("/var/lib/guichet")


CLEAR_TEXT_REFUSED = (
    "sends the counter's secrets in clear: use {secure}:// (plain {plain}:// only to a "
    "loopback address, for tests and the demo)"
)


def is_loopback(url: str) -> bool:
    """True if the URL's host is this machine (``localhost``, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TlsSection(_Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False


class FleetSection(_Section):
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = Field(default=DEFAULT_KEEPALIVE_S, ge=5, le=3600)
    telemetry_interval_s: int = Field(default=DEFAULT_TELEMETRY_INTERVAL_S, ge=1, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    outbox_max_messages: int = Field(default=DEFAULT_OUTBOX_MAX_MESSAGES, ge=100)
    # Enrolment (``appliance/enrol.py``): the fleet server's base URL and the token an
    # administrator made for this site. Credentials obtained are stored in data_dir.
    enrolment_url: str | None = None  # https://fleet.example.fr
    enrolment_token: str | None = Field(default=None, min_length=8, max_length=128)
    tls: TlsSection = TlsSection()

    @field_validator("enrolment_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must look like https://fleet.example.fr")
            if parts.scheme == "http" and not is_loopback(value):  # the enrolment token
                raise ValueError(CLEAR_TEXT_REFUSED.format(secure="https", plain="http"))
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parse_mqtt_url(value)
        except MqttUrlError:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883") from None
        return value

    @property
    def host(self) -> str:
        return parse_mqtt_url(self.mqtt_url).host

    @property
    def port(self) -> int:
        return parse_mqtt_url(self.mqtt_url).port

    @property
    def uses_tls(self) -> bool:
        return parse_mqtt_url(self.mqtt_url).tls


ScreenSide = Annotated[int, Field(ge=320, le=7680)]  # pixels: from a tiny panel to 8K
GpioPin = Annotated[int, Field(ge=0, le=27)]  # BCM numbering, the 40-pin header's GPIOs
MAX_CHOICE_BUTTONS = 6  # a questionnaire's options beyond these stay on the call button


class HardwareSection(_Section):
    """Which adapter each part uses: the real library, a simulation, or none at all."""

    button: Literal["gpiozero", "simulated"] = "simulated"
    button_pin: int = Field(default=17, ge=0, le=27)
    light: Literal["gpiozero", "simulated"] = "simulated"
    light_pin: int = Field(default=27, ge=0, le=27)
    # Extra buttons, one per option (BCM GPIOs, same adapter as the call button): on the
    # service choice and the questionnaire, the N-th calls/chooses the N-th option at once.
    choice_pins: tuple[GpioPin, ...] = Field(default=(), max_length=MAX_CHOICE_BUTTONS)
    # Spoken prompts (the questionnaire when ``spoken``, every screen with [accessibility]
    # speech): espeak-ng, or "none".
    speech: Literal["espeak-ng", "none"] = "none"
    speech_voice: str = Field(default="fr", pattern=r"^[a-z][a-z0-9+_-]{0,31}$")
    gpio_pin_factory: Literal["default", "mock"] = "default"
    # The call's camera: "test_pattern" (PyAV lavfi; "simulated" is its older name).
    camera: Literal["picamera2", "v4l2", "test_pattern", "simulated", "none"] = "simulated"
    camera_device: str = "/dev/video0"
    # What the camera hands to WebRTC: "h264" is sent without re-encoding (Pi 4 hardware
    # encoder, a UVC H.264 webcam, or the pre-encoded test pattern); "raw" frames are
    # encoded by aiortc (Pi 5, MJPEG webcams); "auto": h264 on a Pi 4, else raw/MJPEG.
    camera_encoding: Literal["auto", "h264", "raw"] = "auto"
    camera_size: tuple[ScreenSide, ScreenSide] = (1280, 720)
    camera_fps: int = Field(default=30, ge=5, le=60)
    # Microphone and loudspeaker: ALSA or PulseAudio/PipeWire through PyAV.
    audio_in: Literal["alsa", "pulse", "test_tone", "none"] = "test_tone"
    audio_in_device: str = "default"
    audio_out: Literal["alsa", "pulse", "none"] = "none"
    audio_out_device: str = "default"
    # Private listening (issue 15): a USB headset (or USB sound card) plugged in takes the
    # call's audio and the speakers go quiet (ALSA or no loudspeaker only). Its device:
    # "auto" (the sound card the kernel makes for it) or an ALSA name. "none": never.
    headset: Literal["usb", "none"] = "usb"
    headset_device: str = "auto"
    # A real microphone's speech goes through WebRTC's processing (echo cancellation against
    # the loudspeaker, noise suppression, gain control: docs/audio.md); "none" sends it raw.
    # The test tone and the silence never do: the processing would take them for noise.
    audio_processing: Literal["webrtc", "none"] = "webrtc"
    printer: Literal["cups", "simulated", "none"] = "simulated"
    printer_queue: str | None = None
    # The CUPS scheduler: a host or a Unix socket path; unset follows libcups' default.
    printer_server: str | None = None
    scanner: Literal["sane", "simulated", "none"] = "simulated"
    scanner_device: str | None = None
    usb: Literal["pyudev", "simulated"] = "simulated"
    system: Literal["real", "simulated"] = "real"
    # The system updater (docs/updates.md): RAUC on a counter's A/B card, or simulated.
    updater: Literal["rauc", "simulated"] = "simulated"
    screen: Literal["pygame", "simulated", "none"] = "simulated"
    # SDL's video driver: "kmsdrm" draws straight to the Pi's display with no desktop;
    # "x11"/"wayland" in a window on a laptop; "dummy"/"offscreen" draw in memory (tests).
    screen_driver: Literal["kmsdrm", "x11", "wayland", "offscreen", "dummy"] = "kmsdrm"
    # [width, height]; unset takes the display's own mode, fullscreen (1280×720 in memory).
    screen_size: tuple[ScreenSide, ScreenSide] | None = None

    @field_validator("choice_pins")
    @classmethod
    def _free_pins(cls, pins: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if len(set(pins)) != len(pins):
            raise ValueError("a GPIO is listed twice")
        for name in ("button_pin", "light_pin"):
            if info.data.get(name) in pins:
                raise ValueError(
                    f"GPIO{info.data[name]} is already the {name.removesuffix('_pin')}'s"
                )
        return pins


class CallSection(_Section):
    """The call: the fleet server's signalling endpoint and the counter's timings.

    Without ``server_url`` the counter runs without calls (fleet health only).
    """

    server_url: str | None = None  # ws(s)://server/ws/counter
    token: str | None = Field(default=None, min_length=16)  # the counter's call token
    # A press this long hangs up, chooses a service or an answer; shorter moves (issue 15:
    # longer for citizens who press slowly).
    long_press_s: float = Field(default=2.0, ge=0.5, le=10)
    restore_timeout_s: float = Field(default=30.0, ge=5, le=300)  # link/media back by then
    request_timeout_s: float = Field(default=10.0, ge=2, le=120)  # request acknowledged by then
    ring_grace_s: float = Field(default=15.0, ge=0, le=300)  # beyond the server's ring timeout
    ended_screen_s: float = Field(default=6.0, ge=1, le=60)  # "Merci" stays this long
    out_of_service_after_s: float = Field(default=10.0, ge=0, le=600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=600)
    # Offer 127.0.0.1 as an ICE candidate: only for tests/demos in a loopback-only namespace.
    ice_loopback: bool = False
    # Video follows the line (resolution, frame rate, bitrate; docs/adaptation.md). Off: the
    # camera sends what [hardware] says whatever the line carries (benchmarks' baseline).
    adaptation: bool = True

    @field_validator("server_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError("must look like wss://server/ws/counter")
        if parts.scheme == "ws" and not is_loopback(value):  # the call token
            raise ValueError(CLEAR_TEXT_REFUSED.format(secure="wss", plain="ws"))
        return value


class QuestionnaireSection(_Section):
    """The satisfaction questionnaire on the screen after each answered call.

    Its questions come from the fleet server (``config``), else the built-in default.
    """

    enabled: bool = True
    # Read the questions aloud: unset follows the fleet's questionnaire (``spoken``);
    # true/false forces it on this counter (e.g. false where nobody should hear it).
    spoken: bool | None = None


class AccessibilitySection(_Section):
    """Issue 15: the counter's screens said aloud, and more time for those who need it."""

    # Every screen said aloud by default (needs [hardware] speech = "espeak-ng"); the fleet
    # server's counter page may turn it on or off for this counter.
    speech: bool = False
    # The spoken prompts' loudness, 0-100 % of espeak-ng's range (50: its own default); the
    # call's audio keeps its own level (the loudspeaker's mixer).
    speech_volume_pct: int = Field(default=50, ge=0, le=100)
    # The service list returns to its first service this long after a press moved it.
    choice_timeout_s: float = Field(default=60.0, ge=10, le=600)
    # Each question of the questionnaire: unset follows the fleet's questionnaire.
    question_timeout_s: float | None = Field(default=None, ge=10, le=600)
    # A timeout's last seconds, when the screen offers more time for a short press.
    more_time_warning_s: float = Field(default=10.0, ge=3, le=60)


class DocumentsSection(_Section):
    """Remote scan and print during a call (``appliance/call/documents.py``)."""

    enabled: bool = True
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    max_pages: int = Field(default=50, ge=1, le=1000)
    # A RAM directory private to the counter; unset: $XDG_RUNTIME_DIR, else /dev/shm.
    private_dir: Path | None = None
    job_timeout_s: float = Field(default=300.0, ge=5, le=3600)  # a job still not done: failed


class UpdatesSection(_Section):
    """Software updates (issue 13, docs/updates.md)."""

    # After booting a new release: this long to be online with the fleet and pass the
    # self-test, else back to the previous one.
    health_gate_s: int = Field(default=HEALTH_GATE_S, ge=60, le=3600)
    # RAUC streams the bundle from the fleet server as it installs (HTTP range requests: only
    # the blocks neither slot has); false: the whole bundle is fetched to the data partition
    # first (a kernel without NBD, a server that cannot serve ranges).
    streaming: bool = True


class LoggingSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = True


class ApplianceConfig(_Section):
    device: DeviceSection
    fleet: FleetSection = FleetSection()
    hardware: HardwareSection = HardwareSection()
    call: CallSection = CallSection()
    documents: DocumentsSection = DocumentsSection()
    questionnaire: QuestionnaireSection = QuestionnaireSection()
    accessibility: AccessibilitySection = AccessibilitySection()
    updates: UpdatesSection = UpdatesSection()
    logging: LoggingSection = LoggingSection()

    @field_validator("call")
    @classmethod
    def _call_token(cls, call: CallSection, info: ValidationInfo) -> CallSection:
        # The call token is in the file, or comes with enrolment (first boot writes that way).
        fleet = info.data.get("fleet")
        enrolling = isinstance(fleet, FleetSection) and fleet.enrolment_token is not None
        if call.server_url and not call.token and not enrolling:
            raise ValueError("a call token is needed with server_url (or [fleet] enrolment_token)")
        return call


def parse_config(text: str, *, source: str = "<config>") -> ApplianceConfig:
    try:
        return tomlmodel.parse(ApplianceConfig, text, source=source)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None


def load_config(path: Path) -> ApplianceConfig:
    try:
        return tomlmodel.load(ApplianceConfig, path)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
