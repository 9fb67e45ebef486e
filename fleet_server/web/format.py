"""French labels and formatting for every page's templates: dates, durations, numbers, the
vocabularies' labels, event and audit details, and messages.

Times are stored in UTC and shown in the Pays' own time zone, Europe/Paris, on every page.
The labels themselves live with their vocabularies (``guichet.contract``, ``guichet.events``,
``guichet.signalling``, ``guichet.schedule``, the server's ``ROLE_LABELS``, ``ALERT_LABELS``
and the audit's ``ACTIONS``); this module only says which one a value belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from fleet_server.calls.line_figures import describe as describe_line
from fleet_server.calls.quality import (
    MIN_MEASURED_S,
    POOR,
    WEAKNESS_LABELS,
    WEEK,
    Weakness,
    WeekQuality,
)
from fleet_server.models import CallRecord
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.security import audit
from fleet_server.security.roles import ROLE_LABELS, Role
from guichet import signalling
from guichet.actions import ACTION_LABELS
from guichet.contract import (
    AUDIO_ROUTE_LABELS,
    DEVICE_HEALTH_LABELS,
    DEVICE_STATE_LABELS,
    EVENT_KIND_LABELS,
    STATUS_REASON_LABELS,
    DeviceState,
)
from guichet.events import (
    CHECK_OUTCOME_LABELS,
    COMPONENT_LABELS,
    EVENT_FIELD_LABELS,
    CheckOutcome,
    EventField,
)
from guichet.schedule import (
    ACCESS_MODE_LABELS,
    MONTHS,
    WEEKDAYS,
    day_fr,
    day_of_month_fr,
    hour_fr,
)
from guichet.updates import UPDATE_STATE_LABELS

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
DISPLAY_TZ = ZoneInfo("Europe/Paris")
MISSING = "—"  # shown for a value the counter has not reported
CLOCK_SKEW_FLAG_S = 300  # a counter's clock further off than this is flagged (latency is ~1 s)
NBSP = "\u00a0"  # French typography: a no-break space before « : », inside « »
SENTENCE_ENDS = (".", "!", "?", "…")

STATE_LABELS: dict[str, str] = {s.value: label for s, label in DEVICE_STATE_LABELS.items()}
HEALTH_LABELS: dict[str, str] = {h.value: label for h, label in DEVICE_HEALTH_LABELS.items()}
EVENT_LABELS: dict[str, str] = {k.value: label for k, label in EVENT_KIND_LABELS.items()}
END_REASON_LABELS: dict[str, str] = {
    r.value: label for r, label in signalling.END_REASON_LABELS.items()
}
REASON_LABELS: dict[str, str] = {r.value: label for r, label in STATUS_REASON_LABELS.items()}
FIELD_LABELS: dict[str, str] = {f.value: label for f, label in EVENT_FIELD_LABELS.items()}
COMPONENTS: dict[str, str] = {c.value: label for c, label in COMPONENT_LABELS.items()}
OUTCOMES: dict[str, str] = {o.value: label for o, label in CHECK_OUTCOME_LABELS.items()}
MODE_LABELS: dict[str, str] = {m.value: label for m, label in ACCESS_MODE_LABELS.items()}


# --- vocabularies -------------------------------------------------------------------------


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or DeviceState.UNKNOWN, state or MISSING)


def audio_route_label(route: str | None) -> str:
    """Where the counter's call audio goes (its last telemetry): speakers or a headset."""
    return AUDIO_ROUTE_LABELS.get(route, route) if route else MISSING  # type: ignore[call-overload]


def health_label(health: str | None) -> str:
    return HEALTH_LABELS.get(health, health) if health else MISSING


def alert_label(kind: str) -> str:
    return ALERT_LABELS.get(kind, kind.replace("_", " ").capitalize())


def event_label(kind: str) -> str:
    return EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize())


def end_reason_label(reason: str | None) -> str:
    return END_REASON_LABELS.get(reason, reason) if reason else "En cours"


def status_reason_label(reason: str | None) -> str:
    """Why a counter's state changed; an unknown reason (a newer counter's) as it came."""
    return REASON_LABELS.get(reason, reason) if reason else MISSING


def service_label(code: str | None, services: Mapping[str, str]) -> str:
    """A service's label from its code (a deleted service: its code)."""
    return services.get(code, code) if code else "aucun"


# --- dates and durations ------------------------------------------------------------------


def format_datetime(value: datetime | None) -> str:
    """``14/03/2025 09:05:12`` in Paris time, or a dash."""
    if value is None:
        return MISSING
    return value.astimezone(DISPLAY_TZ).strftime("%d/%m/%Y %H:%M:%S")


def format_date(day: date | None, *, year: bool = True) -> str:
    """``lundi 1er janvier 2025`` (without the year if asked), or a dash."""
    return day_fr(day, year=year) if day is not None else MISSING


def short_day(moment: datetime, weekdays: tuple[str, ...]) -> str:
    """A chart's day tick in Paris time: ``lun. 1er``, ``mar. 2``."""
    local = moment.astimezone(DISPLAY_TZ)
    return f"{weekdays[local.weekday()]} {day_of_month_fr(local.day)}"


def month_label(month: date) -> str:
    """``mars 2025``."""
    return f"{MONTHS[month.month - 1]} {month.year}"


def day_label(day: date, today: date) -> str:
    """``Aujourd'hui, lundi 1er janvier``, ``Demain, mardi 2 janvier``, ``jeudi 4 janvier``."""
    prefix = (
        "Aujourd'hui, " if day == today else ("Demain, " if day == today + timedelta(1) else "")
    )
    return f"{prefix}{day_fr(day)}"


def hours_label(start: datetime, end: datetime) -> str:
    """``9 h – 12 h 30`` in Paris time; a day or more: ``en continu``."""
    if end - start >= timedelta(days=1):
        return "en continu"
    return f"{hour_fr(start)} – {hour_fr(end)}"


def clock(at: time) -> str:
    """A wall-clock hour as French writes it: ``22 h``, ``6 h 30``."""
    return f"{at.hour} h" if at.minute == 0 else f"{at.hour} h {at.minute:02d}"


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


# --- event and audit details --------------------------------------------------------------


def plain_value(value: object) -> str:
    """Any detail's value in French: a dash, ``oui``/``non``, a French number, a list, a
    date or time in Paris time; other text as it is."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int | float):
        return number(value, digits=0 if float(value).is_integer() else 1)
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value) or MISSING
    text = str(value)
    when = _iso_moment(text)
    return when if when is not None else text


def _iso_moment(text: str) -> str | None:
    """An ISO date (``2025-01-01``) or aware date-time, said in French; else None."""
    if not (10 <= len(text) <= 40 and text[:4].isdigit() and text[4:5] == "-"):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if len(text) == 10:
        return format_date(moment.date())
    return format_datetime(moment) if moment.tzinfo is not None else None


def _outcome(value: object) -> str:
    """A self-test check's value: ``réussi``, ``ignoré`` or ``échec : ce qui a été vu``."""
    word, _, rest = str(value).partition(": ")
    if word not in OUTCOMES:
        return plain_value(value)
    label = OUTCOMES[word]
    return f"{label}{NBSP}: {rest}" if rest and word == CheckOutcome.FAILED else label


def component_label(name: object) -> str:
    """A part of a counter in French (a self-test check's name); an unknown one as it came."""
    return COMPONENTS.get(str(name), plain_value(name))


def outcome_label(value: object) -> str:
    """A self-test check's outcome in French: réussi, échec, ignoré."""
    return OUTCOMES.get(str(value), plain_value(value))


def line_test(measured: object) -> str:
    """A test call's figures as the answerer stored them: « Aller-retour : 42 ms, … »."""
    return describe_line(measured) if isinstance(measured, Mapping) else MISSING


def _detail(label: str, text: str) -> str:
    return f"{label}{NBSP}: {text}"


def event_details(data: Mapping[str, object] | None, services: Mapping[str, str]) -> list[str]:
    """An event's data as French ``Libellé : valeur`` items (a key the server does not know
    — a newer counter's — as it came)."""
    said: dict[str, Callable[[object], str]] = {
        EventField.SERVICE: lambda v: service_label(str(v) if v else None, services),
        EventField.REASON: lambda v: END_REASON_LABELS.get(str(v), plain_value(v)),
        EventField.DURATION_S: lambda v: (
            format_duration(v) if isinstance(v, int | float) else plain_value(v)
        ),
        EventField.MEASURED_S: lambda v: (
            format_duration(v) if isinstance(v, int | float) else plain_value(v)
        ),
        EventField.COMPONENT: lambda v: COMPONENTS.get(str(v), plain_value(v)),
        EventField.KIND: lambda v: COMPONENTS.get(str(v), plain_value(v)),
    }
    items = []
    for key, value in (data or {}).items():
        if key in COMPONENTS:  # a self-test's check
            items.append(_detail(COMPONENTS[key], _outcome(value)))
            continue
        text = said.get(key, plain_value)(value)
        items.append(_detail(FIELD_LABELS.get(key, key), text))
    return items


def audit_details(detail: Mapping[str, object] | None, services: Mapping[str, str]) -> list[str]:
    """An audit entry's details as French ``Libellé : valeur`` items, in a stable order."""
    said: dict[str, Callable[[object], str]] = {
        "role": lambda v: ROLE_LABELS.get(str(v), plain_value(v)),
        "service": lambda v: service_label(str(v) if v else None, services),
        "mode": lambda v: MODE_LABELS.get(str(v), plain_value(v)),
        "weekday": lambda v: WEEKDAYS[v] if isinstance(v, int) and 0 <= v < 7 else plain_value(v),
        "fallback_s": lambda v: seconds(v) if isinstance(v, int | float) else plain_value(v),
        "speech": lambda v: "comme le réglage du guichet" if v is None else plain_value(v),
        "waves": waves_words,
    }
    items = []
    for key in sorted(detail or {}, key=_audit_order):
        value = (detail or {})[key]
        words = audit.DETAIL_VALUES.get(key, {})
        if isinstance(value, str) and value in words:
            text = words[value]
        else:
            text = said.get(key, plain_value)(value)
        items.append(_detail(audit.DETAIL_LABELS.get(key, key), text))
    return items


def waves_words(value: object) -> str:
    """A rollout's waves as ``records.spec_to_json`` keeps them, in French, one after the
    other (« 1 guichet pilote ; 50 % des guichets ; tous les autres »)."""
    if not isinstance(value, list):
        return plain_value(value)
    return " ; ".join(_wave_words(w) for w in value) or MISSING


def _wave_words(wave: object) -> str:
    if not isinstance(wave, Mapping):
        return plain_value(wave)
    kind = wave.get("kind")
    if kind == "canary":
        count = wave.get("count")
        plural = "" if count == 1 else "s"
        return f"{plain_value(count)} guichet{plural} pilote{plural}"
    if kind == "percent":
        return f"{plain_value(wave.get('pct'))}{NBSP}% des guichets"
    if kind == "devices":
        return f"guichets choisis{NBSP}: {plain_value(wave.get('device_ids'))}"
    if kind == "sites":
        return f"sites{NBSP}: {plain_value(wave.get('sites'))}"
    if kind == "rest":
        return "tous les autres"
    return plain_value(wave.get("kind")) or MISSING  # a kind this server does not know


def _audit_order(key: str) -> tuple[int, str]:
    order = list(audit.DETAIL_LABELS)
    return (order.index(key), key) if key in order else (len(order), key)


# --- call quality (docs/call-quality.md) ------------------------------------------------------

WEAK_LINE = "Ligne faible cette semaine"
# How each weakness's figure is said: unit, decimals, and "du temps" for a share of call time.
WEAKNESS_WORDS: dict[Weakness, tuple[str, int, str]] = {
    Weakness.FROZEN: ("%", 1, " du temps"),
    Weakness.LOSS: ("%", 1, ""),
    Weakness.BITRATE: ("kbit/s", 0, ""),
    Weakness.AUDIO: ("%", 1, " du temps"),
}


def _count(n: int, one: str, many: str, none: str) -> str:
    """``aucun gel``, ``1 gel``, ``3 gels``."""
    return none if n == 0 else f"{n} {one if n == 1 else many}"


def quality_line(call: CallRecord) -> str:
    """A call's quality in one short French line (``Qualité : 780 kbit/s en moyenne (min
    310), pertes 1,2 %, aller-retour 128 ms, 2 gels (1,4 s), 1 palier``); empty when its
    counter sent no summary (an older counter, a call never connected)."""
    parts = []
    if call.video_kbps_avg is not None:
        text = f"{number(call.video_kbps_avg, 'kbit/s')} en moyenne"
        if call.video_kbps_min is not None and round(call.video_kbps_min) < round(
            call.video_kbps_avg
        ):
            text += f" (min {number(call.video_kbps_min)})"
        parts.append(text)
    if call.loss_pct is not None:
        parts.append(f"pertes {number(call.loss_pct, '%', 1)}")
    if call.rtt_ms is not None:
        parts.append(f"aller-retour {number(call.rtt_ms, 'ms')}")
    if call.freezes is not None:
        freezes = _count(call.freezes, "gel", "gels", "aucun gel")
        if call.freezes and call.frozen_s is not None:
            freezes += f" ({number(call.frozen_s, 's', 1)})"
        parts.append(freezes)
    if call.rung_steps:
        steps = _count(call.rung_steps, "palier", "paliers", "")
        parts.append(f"{steps} (jusqu'à {call.lowest_rung})" if call.lowest_rung else steps)
    if call.audio_gaps_pct:
        parts.append(f"voix coupée {number(call.audio_gaps_pct, '%', 1)} du temps")
    return f"Qualité{NBSP}: {', '.join(parts)}" if parts else ""


def _weakness(week: WeekQuality, weakness: Weakness) -> str:
    unit, digits, share = WEAKNESS_WORDS[weakness]
    threshold = POOR[weakness]
    side = "plus de" if threshold.above else "moins de"
    value = number(week.figure(weakness), unit, digits)
    limit = number(threshold.limit, unit, 0)
    return f"{WEAKNESS_LABELS[weakness]} {value}{share} (seuil{NBSP}: {side} {limit})"


def week_quality_note(week: WeekQuality) -> str:
    """A counter's week in French: its measured calls, then why its line is poor (each
    figure with its threshold) or, when it is not, its main figures."""
    calls = _count(week.calls, "appel mesuré", "appels mesurés", "aucun appel mesuré")
    head = f"Sur les {WEEK.days} derniers jours ({calls})"
    if week.weaknesses:
        return f"{head}{NBSP}: {' ; '.join(_weakness(week, w) for w in week.weaknesses)}."
    figures = [
        f"{WEAKNESS_LABELS[w]} {number(week.figure(w), *WEAKNESS_WORDS[w][:2])}"
        f"{WEAKNESS_WORDS[w][2]}"
        for w in Weakness
        if week.figure(w) is not None
    ]
    if week.measured_s < MIN_MEASURED_S:
        figures.append("trop peu mesuré pour juger la ligne")
    return f"{head}{NBSP}: {', '.join(figures) or 'rien de mesuré'}."


# --- messages -----------------------------------------------------------------------------


def sentence(text: str | None) -> str:
    """A message as a sentence: capital first letter, final full stop (``l'identifiant
    existe déjà`` → ``L'identifiant existe déjà.``). Domain errors are written lowercase,
    to read well after ``guichet fleet :`` on the command line."""
    text = (text or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(SENTENCE_ENDS) else text + "."


# The accessibility statement's compliance state, said in every page's footer (RGAA 4.1):
# "non conforme" while no audit of the RGAA's 106 criteria has been made, whatever the
# automated audit finds (fleet_server/web/accessibility.py, docs/accessibility.md).
ACCESSIBILITY_COMPLIANCE = "non conforme"


def make_templates() -> Jinja2Templates:
    """The Jinja environment with the dashboard's filters (autoescaping on)."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.filters.update(
        state_label=state_label,
        health_label=health_label,
        audio_route_label=audio_route_label,
        alert_label=alert_label,
        event_label=event_label,
        end_reason_label=end_reason_label,
        status_reason_label=status_reason_label,
        service_label=service_label,
        event_details=event_details,
        audit_details=audit_details,
        datetime=format_datetime,
        date=format_date,
        duration=format_duration,
        since=since,
        ago=ago,
        number=number,
        seconds=seconds,
        sentence=sentence,
        quality_line=quality_line,
        week_quality_note=week_quality_note,
        component_label=component_label,
        outcome_label=outcome_label,
        line_test=line_test,
        clock=clock,
        waves=waves_words,
    )
    env.globals["MISSING"] = MISSING
    env.globals["CLOCK_SKEW_FLAG_S"] = CLOCK_SKEW_FLAG_S
    env.globals["Role"] = Role
    env.globals["UPDATE_STATE_LABELS"] = {
        s.value: label for s, label in UPDATE_STATE_LABELS.items()
    }
    env.globals["STATE_LABELS"] = STATE_LABELS
    env.globals["last_known"] = last_known
    env.globals["WEAK_LINE"] = WEAK_LINE
    env.globals["ACCESSIBILITY_COMPLIANCE"] = ACCESSIBILITY_COMPLIANCE
    env.globals["ACTION_LABELS"] = {a.value: label for a, label in ACTION_LABELS.items()}
    return templates
