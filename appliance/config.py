"""The counter's configuration: one TOML file, validated into frozen models.

Unknown keys are rejected, so a typo never silently falls back to a default. A bad file
raises ``ConfigError`` whose message names the file and the offending key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from appliance.errors import ConfigError
from guichet.contract import DEVICE_ID_PATTERN

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
    tls: TlsSection = TlsSection()

    @field_validator("mqtt_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.mqtt_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.mqtt_url).scheme == "mqtts"


class HardwareSection(_Section):
    """Which adapter each part uses: the real library, a simulation, or none at all."""

    button: Literal["gpiozero", "simulated"] = "simulated"
    button_pin: int = Field(default=17, ge=0, le=27)
    light: Literal["gpiozero", "simulated"] = "simulated"
    light_pin: int = Field(default=27, ge=0, le=27)
    gpio_pin_factory: Literal["default", "mock"] = "default"
    camera: Literal["picamera2", "v4l2", "simulated", "none"] = "simulated"
    camera_device: str = "/dev/video0"
    printer: Literal["cups", "simulated", "none"] = "simulated"
    printer_queue: str | None = None
    scanner: Literal["sane", "simulated", "none"] = "simulated"
    scanner_device: str | None = None
    usb: Literal["pyudev", "simulated"] = "simulated"
    system: Literal["real", "simulated"] = "real"


class LoggingSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = True


class ApplianceConfig(_Section):
    device: DeviceSection
    fleet: FleetSection = FleetSection()
    hardware: HardwareSection = HardwareSection()
    logging: LoggingSection = LoggingSection()


def parse_config(text: str, *, source: str = "<config>") -> ApplianceConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return ApplianceConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: key '{key}': {first['msg']}{more}") from None


def load_config(path: Path) -> ApplianceConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, source=str(path))
