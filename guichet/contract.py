"""The wire contract between counters and the fleet server (MQTT v1).

This is the only place where topics and payloads are defined; the appliance and the
fleet server both import it. Each message is a pydantic model serialised as compact JSON.
Golden fixtures in ``tests/fixtures/contract`` pin every message's exact shape.

Topic tree: ``guichet/v1/<device_id>/<kind>`` where kind is one of ``Kind``; ``KINDS`` says,
in one row per kind, its payload's model, QoS, retain flag and direction.

Times: every ``at`` is the counter's own clock, which may be wrong (a Pi has no real-time
clock; after a power cut it runs on its last saved time until NTP answers). The server
keeps it as reported but dates state, staleness, alerts and retention by its own receive
time; ``Telemetry``, ``Event`` and ``SurveyAnswer`` carry ``clock_synchronised`` (added
within v1 with a default, so older counters and servers still talk) and the server trusts
an event's or answer's ``at`` only when it was stamped by a synchronised clock.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guichet.errors import ContractError as ContractError  # re-exported: contract.ContractError
from guichet.events import CheckOutcome
from guichet.messages import first_error
from guichet.questionnaire import Questionnaire
from guichet.schedule import CounterSchedule
from guichet.updates import REASON_MAX_CHARS, VERSION_MAX_CHARS, VERSION_PATTERN, UpdateState

TOPIC_ROOT = "guichet"
PROTOCOL_VERSION = "v1"
SCHEMA_VERSION: Literal[1] = 1  # the "v" field of every payload; bumped only with PROTOCOL_VERSION
MAX_PAYLOAD_BYTES = 64 * 1024  # a telemetry message is ~1 KB; anything this big is hostile
MAX_CONFIG_BYTES = 512 * 1024  # server → counter: two weeks of openings and appointments
# Also a valid broker username. Python code matches it with ``fullmatch`` (with ``match``, ``$``
# lets a trailing newline through); pydantic's ``pattern`` anchors at the very end.
DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

QOS_AT_MOST_ONCE = 0
QOS_AT_LEAST_ONCE = 1


class Kind(StrEnum):
    """The last part of a device topic."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENT = "event"
    SURVEY = "survey"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"
    CONFIG = "config"
    UPDATE = "update"  # a software update's progress (issue 13, docs/updates.md)


def is_valid_device_id(device_id: str) -> bool:
    return _DEVICE_ID_RE.fullmatch(device_id) is not None


def topic(device_id: str, kind: Kind) -> str:
    """The topic a device's message of this kind is published on."""
    if not is_valid_device_id(device_id):
        raise ContractError(f"invalid device id {device_id!r}")
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/{device_id}/{kind.value}"


def subscription_all(kind: Kind) -> str:
    """The server's wildcard subscription for one kind across the whole fleet."""
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/+/{kind.value}"


def parse_topic(name: str) -> tuple[str, Kind]:
    """Split a topic into (device_id, kind); raises ContractError for anything else."""
    parts = name.split("/", 3)
    if len(parts) != 4 or parts[0] != TOPIC_ROOT:
        raise ContractError(f"unknown topic {name!r}")
    if parts[1] != PROTOCOL_VERSION:
        raise ContractError(f"unknown protocol version {parts[1]!r}")
    device_id, rest = parts[2], parts[3]
    if not is_valid_device_id(device_id):
        raise ContractError(f"invalid device id in topic {name!r}")
    try:
        return device_id, Kind(rest)
    except ValueError:
        raise ContractError(f"unknown message kind {rest!r}") from None


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireMessage(BaseModel):
    # Tolerant reader: unknown fields are ignored so that a newer counter can talk to an
    # older server within v1; wrong types and missing fields are rejected. Within v1 a field
    # may be added or removed only if it has a default; anything else needs v2.
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = SCHEMA_VERSION


# --- status -----------------------------------------------------------------------------


class DeviceState(StrEnum):
    """A counter as the fleet server sees it (``Status`` gives online/offline; no telemetry
    for a few intervals makes it silent; never heard from, unknown)."""

    ONLINE = "online"
    OFFLINE = "offline"
    SILENT = "silent"
    UNKNOWN = "unknown"


DEVICE_STATE_LABELS: dict[DeviceState, str] = {  # French, as the dashboard shows them
    DeviceState.ONLINE: "En ligne",
    DeviceState.OFFLINE: "Hors ligne",
    DeviceState.SILENT: "Silencieux",
    DeviceState.UNKNOWN: "Inconnu",
}


class Presence(StrEnum):
    """What a counter says of itself in ``status``: the two device states it can tell."""

    ONLINE = DeviceState.ONLINE.value
    OFFLINE = DeviceState.OFFLINE.value


class Status(WireMessage):
    """Retained. "online" on connect; "offline" on clean stop or as the broker's last will."""

    state: Presence
    software_version: str = Field(max_length=64)
    at: datetime
    telemetry_interval_s: int | None = Field(default=None, ge=1, le=86_400)
    reason: Literal["connected", "shutdown", "last-will"] = "connected"
    # How the counter names itself until enrolment gives the server the authority on it.
    site: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=128)


class StatusReason(StrEnum):
    """Why a counter's state changed, as its status history keeps it: the first three are
    what a counter says in ``Status.reason``, the last two what the server concluded."""

    CONNECTED = "connected"
    SHUTDOWN = "shutdown"
    LAST_WILL = "last-will"  # published by the broker for a counter that vanished
    TELEMETRY = "telemetry"  # a silent or unknown counter came back by sending telemetry
    NO_TELEMETRY = "no-telemetry"  # no telemetry for a few intervals: silent


STATUS_REASON_LABELS: dict[StatusReason, str] = {  # French, as a counter's page shows them
    StatusReason.CONNECTED: "Connexion du guichet",
    StatusReason.SHUTDOWN: "Arrêt normal du guichet",
    StatusReason.LAST_WILL: "Liaison perdue (signalée par le courtier)",
    StatusReason.TELEMETRY: "Mesures reçues de nouveau",
    StatusReason.NO_TELEMETRY: "Plus aucune mesure reçue",
}


# --- telemetry --------------------------------------------------------------------------


class Throttling(BaseModel):
    """The Pi firmware's get_throttled flags (bits 0-3 now, 16-19 since boot)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    raw: int = Field(ge=0)
    under_voltage: bool
    frequency_capped: bool
    throttled: bool
    soft_temperature_limit: bool
    occurred_since_boot: bool


class NetworkInterface(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(max_length=32)
    up: bool
    addresses: list[str] = Field(default_factory=list, max_length=16)


class DeviceHealth(StrEnum):
    OK = "ok"
    ABSENT = "absent"
    ERROR = "error"
    WARNING = "warning"


DEVICE_HEALTH_LABELS: dict[DeviceHealth, str] = {  # French, as the dashboard shows them
    DeviceHealth.OK: "OK",
    DeviceHealth.ABSENT: "Absent",
    DeviceHealth.ERROR: "En erreur",
    DeviceHealth.WARNING: "Attention",
}


class Peripheral(BaseModel):
    """One peripheral as the counter sees it; ``detail`` is a short machine word or text."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    health: DeviceHealth
    model: str | None = Field(default=None, max_length=128)
    detail: str | None = Field(default=None, max_length=256)


class PrinterState(Peripheral):
    """CUPS queue state: ``state`` is idle/processing/stopped; reasons as CUPS gives them."""

    state: Literal["idle", "processing", "stopped", "unknown"] = "unknown"
    reasons: list[str] = Field(default_factory=list, max_length=32)


class ScannerState(Peripheral):
    devices: list[str] = Field(default_factory=list, max_length=16)


class ButtonState(Peripheral):
    pressed: bool = False


class Peripherals(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    camera: Peripheral
    printer: PrinterState
    scanner: ScannerState
    button: ButtonState


class AudioRoute(StrEnum):
    """Where the call's audio goes (issue 15, private listening)."""

    SPEAKERS = "speakers"
    HEADSET = "headset"  # a headset is plugged in: the speakers are quiet


AUDIO_ROUTE_LABELS: dict[AudioRoute, str] = {  # French, as a counter's page shows them
    AudioRoute.SPEAKERS: "Haut-parleurs",
    AudioRoute.HEADSET: "Casque (écoute privée)",
}


class Telemetry(WireMessage):
    at: datetime
    uptime_s: float = Field(ge=0)
    cpu_temperature_c: float | None = None
    throttling: Throttling | None = None
    load: tuple[float, float, float]
    memory_used_pct: float = Field(ge=0, le=100)
    disk_used_pct: float = Field(ge=0, le=100)
    disk_free_bytes: int = Field(ge=0)
    network: list[NetworkInterface] = Field(default_factory=list, max_length=16)
    peripherals: Peripherals
    # Added within v1 (default None: not said, an older counter): whether the counter's
    # clock is synchronised (NTP), as its kernel says.
    clock_synchronised: bool | None = None
    # Added within v1 (issue 15): where the call's audio goes now — the speakers, or a
    # headset plugged in. None: not said (an older counter, or one where a headset cannot
    # take the call: ``[hardware] headset = "none"``, PulseAudio).
    audio_route: AudioRoute | None = None


# --- events and survey ------------------------------------------------------------------


class EventKind(StrEnum):
    COUNTER_STARTED = "counter_started"
    COUNTER_STOPPING = "counter_stopping"
    PERIPHERAL_PLUGGED = "peripheral_plugged"
    PERIPHERAL_UNPLUGGED = "peripheral_unplugged"
    ERROR = "error"
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    SELFTEST = "selftest"


EVENT_KIND_LABELS: dict[EventKind, str] = {  # French, as a counter's page shows them
    EventKind.COUNTER_STARTED: "Guichet démarré",
    EventKind.COUNTER_STOPPING: "Guichet arrêté",
    EventKind.PERIPHERAL_PLUGGED: "Périphérique branché",
    EventKind.PERIPHERAL_UNPLUGGED: "Périphérique débranché",
    EventKind.ERROR: "Erreur",
    EventKind.CALL_STARTED: "Appel commencé",
    EventKind.CALL_ENDED: "Appel terminé",
    EventKind.SELFTEST: "Autotest",
}


Scalar = str | int | float | bool | None


class Event(WireMessage):
    """QoS 1, deduplicated by ``id`` on the server."""

    id: uuid.UUID
    at: datetime
    kind: EventKind
    data: dict[Annotated[str, Field(max_length=64)], Scalar] = Field(default_factory=dict)
    clock_synchronised: bool | None = None  # when ``at`` was stamped; added within v1


class SurveyAnswer(WireMessage):
    """Questionnaire answers, anonymous; deduplicated by ``id``."""

    id: uuid.UUID
    at: datetime
    questionnaire_version: int = Field(ge=1)
    answers: dict[Annotated[str, Field(max_length=64)], Scalar]
    service: str | None = Field(default=None, max_length=64)  # the call's service, for statistics
    clock_synchronised: bool | None = None  # when ``at`` was stamped; added within v1


# --- commands and configuration ---------------------------------------------------------


class Command(WireMessage):
    request_id: uuid.UUID
    at: datetime
    name: str = Field(max_length=64)
    args: dict[Annotated[str, Field(max_length=64)], Scalar] = Field(default_factory=dict)


class CheckReport(BaseModel):
    """One self-test check as a counter reports it: its ``Component`` name, outcome and what
    was seen (French)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(max_length=32)
    outcome: CheckOutcome
    detail: str = Field(default="", max_length=256)


class CommandAck(WireMessage):
    """The counter's answer to ``Command`` with the same ``request_id``; ``detail`` is French,
    for the administrator (why it failed, or what was done)."""

    request_id: uuid.UUID
    at: datetime
    ok: bool
    detail: str | None = Field(default=None, max_length=1024)
    # The self-test action's checks (``guichet.actions``); added within v1 with a default,
    # so an older server ignores them and an older counter sends none.
    checks: list[CheckReport] = Field(default_factory=list, max_length=32)


class DeviceConfig(WireMessage):
    """Retained, server → device. ``version`` increases with every change.

    ``ice_servers`` and ``texts`` were removed within v1: both had defaults and nothing read
    them (the call's ICE servers come with signalling's ``welcome``), so an older counter
    reads a newer config with its defaults and a newer counter ignores them from an older
    server (tolerant reader) — no protocol bump.
    """

    version: int = Field(ge=0)
    issued_at: datetime
    telemetry_interval_s: int | None = Field(default=None, ge=5, le=3600)
    # The counter's openings and appointments for the next days (None: the server has none).
    schedule: CounterSchedule | None = None
    questionnaire: Questionnaire | None = None
    # Added within v1 (issue 15; an older counter ignores it): every screen said aloud, as
    # the counter's page sets it; None: as the counter's own ``[accessibility] speech``.
    speech: bool | None = None


# --- software updates (issue 13) -------------------------------------------------------


class UpdateProgress(WireMessage):
    """What a counter's update is doing (``guichet.updates``; the order is a ``cmd`` named
    ``update``). QoS 1 through the counter's outbox, so a ``rolled_back`` said from the old
    slot survives the reboot; deduplicated by ``id``. ``reason`` is French, for the
    administrator: why it failed or rolled back, or why the reboot waits."""

    id: uuid.UUID
    at: datetime
    release: str | None = Field(default=None, max_length=VERSION_MAX_CHARS, pattern=VERSION_PATTERN)
    state: UpdateState
    percent: int | None = Field(default=None, ge=0, le=100)  # downloading and installing
    reason: str | None = Field(default=None, max_length=REASON_MAX_CHARS)
    slot: Literal["A", "B"] | None = None  # the root slot the counter booted from
    booted_version: str | None = Field(default=None, max_length=VERSION_MAX_CHARS)


# --- the table of kinds -----------------------------------------------------------------


class Direction(StrEnum):
    TO_SERVER = "to_server"  # counter → server
    TO_DEVICE = "to_device"  # server → counter


@dataclass(frozen=True)
class KindSpec:
    """How one kind travels: its payload's model, QoS, retain flag and direction."""

    model: type[WireMessage]
    qos: int
    retained: bool
    direction: Direction

    @property
    def from_device(self) -> bool:
        return self.direction is Direction.TO_SERVER


TO_SERVER, TO_DEVICE = Direction.TO_SERVER, Direction.TO_DEVICE
KINDS: dict[Kind, KindSpec] = {
    Kind.STATUS: KindSpec(Status, QOS_AT_LEAST_ONCE, retained=True, direction=TO_SERVER),
    Kind.TELEMETRY: KindSpec(Telemetry, QOS_AT_MOST_ONCE, retained=False, direction=TO_SERVER),
    Kind.EVENT: KindSpec(Event, QOS_AT_LEAST_ONCE, retained=False, direction=TO_SERVER),
    Kind.SURVEY: KindSpec(SurveyAnswer, QOS_AT_LEAST_ONCE, retained=False, direction=TO_SERVER),
    Kind.CMD: KindSpec(Command, QOS_AT_LEAST_ONCE, retained=False, direction=TO_DEVICE),
    Kind.CMD_ACK: KindSpec(CommandAck, QOS_AT_LEAST_ONCE, retained=False, direction=TO_SERVER),
    Kind.CONFIG: KindSpec(DeviceConfig, QOS_AT_LEAST_ONCE, retained=True, direction=TO_DEVICE),
    Kind.UPDATE: KindSpec(UpdateProgress, QOS_AT_LEAST_ONCE, retained=False, direction=TO_SERVER),
}

Message = (
    Status | Telemetry | Event | SurveyAnswer | Command | CommandAck | DeviceConfig | UpdateProgress
)


def encode(message: WireMessage) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


def decode(kind: Kind, payload: bytes) -> WireMessage:
    """Validate a payload for its topic kind; raises ContractError with a short reason."""
    if len(payload) > (MAX_CONFIG_BYTES if kind is Kind.CONFIG else MAX_PAYLOAD_BYTES):
        raise ContractError(f"payload too large ({len(payload)} bytes)")
    try:
        model = KINDS[kind].model.model_validate_json(payload)
    except ValidationError as exc:
        where, message = first_error(exc, top="payload")
        raise ContractError(f"invalid {kind.value} payload: {where}: {message}") from None
    return model


def last_will(
    software_version: str,
    telemetry_interval_s: int | None = None,
    *,
    site: str | None = None,
    name: str | None = None,
) -> Status:
    """The "offline" status a counter leaves with the broker when it connects."""
    return Status(
        state=Presence.OFFLINE,
        software_version=software_version,
        at=utcnow(),
        telemetry_interval_s=telemetry_interval_s,
        reason="last-will",
        site=site,
        name=name,
    )
