"""French labels and formatting for the dashboard's templates (dates, durations, states).

Times are stored in UTC and shown in the Pays' own time zone, Europe/Paris.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.security.roles import Role
from guichet import signalling
from guichet.contract import DEVICE_STATE_LABELS, DeviceState

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
DISPLAY_TZ = ZoneInfo("Europe/Paris")
MISSING = "—"  # shown for a value the counter has not reported
CLOCK_SKEW_FLAG_S = 300  # a counter's clock further off than this is flagged (latency is ~1 s)

STATE_LABELS: dict[str, str] = {s.value: label for s, label in DEVICE_STATE_LABELS.items()}
HEALTH_LABELS: dict[str, str] = {
    "ok": "OK",
    "absent": "Absent",
    "error": "En erreur",
    "warning": "Attention",
}
EVENT_LABELS: dict[str, str] = {
    "counter_started": "Guichet démarré",
    "counter_stopping": "Guichet arrêté",
    "peripheral_plugged": "Périphérique branché",
    "peripheral_unplugged": "Périphérique débranché",
    "error": "Erreur",
    "call_started": "Appel commencé",
    "call_ended": "Appel terminé",
    "selftest": "Autotest",
}

END_REASON_LABELS: dict[str, str] = {
    r.value: label for r, label in signalling.END_REASON_LABELS.items()
}


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or DeviceState.UNKNOWN, state or MISSING)


def health_label(health: str | None) -> str:
    return HEALTH_LABELS.get(health, health) if health else MISSING


def alert_label(kind: str) -> str:
    return ALERT_LABELS.get(kind, kind.replace("_", " ").capitalize())


def event_label(kind: str) -> str:
    return EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize())


def end_reason_label(reason: str | None) -> str:
    return END_REASON_LABELS.get(reason, reason) if reason else "En cours"


def format_datetime(value: datetime | None) -> str:
    """``14/03/2025 09:05:12`` in Paris time, or a dash."""
    if value is None:
        return MISSING
    return value.astimezone(DISPLAY_TZ).strftime("%d/%m/%Y %H:%M:%S")


def format_duration(seconds: float) -> str:
    """A short French duration: ``45 s``, ``12 min``, ``3 h 05``, ``4 j 2 h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d}"
    return f"{s // 86_400} j {s % 86_400 // 3600} h"


def since(value: datetime | None, now: datetime | None = None) -> str:
    """``depuis 12 min``, or an empty string when the time is unknown."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    return f"depuis {format_duration((now - value).total_seconds())}"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``il y a 12 min``, or a dash."""
    if value is None:
        return MISSING
    now = now or datetime.now(UTC)
    return f"il y a {format_duration((now - value).total_seconds())}"


def last_known(state: str | None, measured_at: datetime | None, now: datetime | None = None) -> str:
    """For a counter that is not online, what its shown measures are: ``dernière valeur connue
    il y a 3 h`` (its last telemetry's age); ``""`` while they are current (it is online) or
    when it never sent any. Its camera "OK" is the last it said, not its state now."""
    if state == DeviceState.ONLINE or measured_at is None:
        return ""
    return f"dernière valeur connue {ago(measured_at, now)}"


def number(value: object, unit: str = "", digits: int = 0) -> str:
    """A French decimal (comma) with its unit, or a dash for anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    text = f"{value:.{digits}f}".replace(".", ",")
    return f"{text} {unit}".strip() if unit else text


def seconds(value: float) -> str:
    """A period in seconds, with a decimal only when it has one: ``3 s``, ``0,5 s``."""
    return number(value, "s", 0 if float(value).is_integer() else 1)


def make_templates() -> Jinja2Templates:
    """The Jinja environment with the dashboard's filters (autoescaping on)."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.filters.update(
        state_label=state_label,
        health_label=health_label,
        alert_label=alert_label,
        event_label=event_label,
        end_reason_label=end_reason_label,
        datetime=format_datetime,
        duration=format_duration,
        since=since,
        ago=ago,
        number=number,
        seconds=seconds,
    )
    env.globals["MISSING"] = MISSING
    env.globals["CLOCK_SKEW_FLAG_S"] = CLOCK_SKEW_FLAG_S
    env.globals["Role"] = Role
    env.globals["STATE_LABELS"] = STATE_LABELS
    env.globals["last_known"] = last_known
    return templates
