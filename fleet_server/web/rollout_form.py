"""The « Lancer un déploiement » form of ``/admin/versions`` (docs/updates.md), read into the
``RolloutPlan`` the API builds too: ``manage.launch`` then checks and plans both alike (a site
or counter no counter in service has or is, a half night window: refused there, once).

The form's waves: a first wave of witnesses (the first *n* counters), of the counters of
chosen sites, or of chosen counters; then a percentage of the whole target; then the rest. A
night window (Paris hours) is optional; the error threshold is a number of failures, a
percentage of the wave, or both. Each refusal is French and names the field (or group of
fields) it is about (``FormRefusedError.about``), so the page marks it and links it to the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time

from fleet_server.errors import (
    NightWindowError,
    RolloutError,
    UnknownRolloutError,
    UnknownTargetError,
)
from fleet_server.updates.manage import RolloutPlan
from fleet_server.updates.rollout import Threshold
from fleet_server.updates.waves import (
    MAX_CANARY,
    Canary,
    ChosenDevices,
    ChosenSites,
    Percent,
    Rest,
    WaveSpec,
)

FORM = "rollout"  # the form's name in the flash; its error's id is "rollout-error"
FIRST_KINDS = ("canary", "sites", "devices")  # the first wave's choices (radio « first »)
FIELDS = (
    "release_id", "first", "canary", "sites", "devices", "percent", "night_start", "night_end",
    "max_failures", "max_failure_pct",
)  # fmt: skip
MAX_ID = 2**31 - 1  # an INTEGER column's largest value
MAX_FAILURES = 10_000  # more than a wave can have: a typing slip
HHMM_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?")  # as <input type=time> sends
NUMBER_RE = re.compile(r"\d{1,6}(?:[.,]\d{1,3})?")  # a French decimal comma is accepted

FormFields = Mapping[str, Sequence[str]]


class FormRefusedError(RolloutError):
    """What was typed cannot describe a rollout; ``about`` names the field (or group)."""

    def __init__(self, message: str, about: str) -> None:
        super().__init__(message)
        self.about = about


@dataclass(frozen=True, slots=True)
class RolloutForm:
    """The form, read: the plan, and the field its chosen first wave came from, if any."""

    plan: RolloutPlan
    chosen: str = ""  # "sites" or "devices"

    def about(self, refusal: RolloutError) -> str:
        """The field a refusal of ``manage.launch`` is about ("" for the whole form)."""
        if isinstance(refusal, NightWindowError):
            return "night"
        if isinstance(refusal, UnknownTargetError):
            return self.chosen
        if isinstance(refusal, UnknownRolloutError):
            return "release_id"
        return ""


def read(fields: FormFields) -> RolloutForm:
    """The rollout the form describes; FormRefusedError (French) when it describes none."""
    release_id = _one(fields, "release_id")
    if not release_id.isdigit() or not 1 <= int(release_id) <= MAX_ID:
        raise FormRefusedError("Choisissez une version.", "release_id")
    first, chosen = _first_wave(fields)
    specs: list[WaveSpec] = [first] if first is not None else []
    percent = _number(fields, "percent", "Deuxième vague : un pourcentage entre 0 et 100.")
    if percent is not None and not 0 <= percent <= 100:
        raise FormRefusedError("Deuxième vague : un pourcentage entre 0 et 100.", "percent")
    if percent:
        specs.append(Percent(percent))
    specs.append(Rest())
    plan = RolloutPlan(
        int(release_id),
        specs,
        threshold=_threshold(fields),
        night_start=_hour(fields, "night_start", "de début"),
        night_end=_hour(fields, "night_end", "de fin"),
    )
    return RolloutForm(plan, chosen)


def _first_wave(fields: FormFields) -> tuple[WaveSpec | None, str]:
    kind = _one(fields, "first") or "canary"
    if kind not in FIRST_KINDS:
        raise FormRefusedError("Choisissez la première vague.", "first")
    sites, devices = list(fields.get("sites", ())), list(fields.get("devices", ()))
    ticked_elsewhere = (kind != "sites" and sites) or (kind != "devices" and devices)
    if ticked_elsewhere:
        raise FormRefusedError(
            "Des sites ou des guichets sont cochés, mais pas la première vague qui les "
            "utilise : choisissez-la, ou décochez-les.",
            "first",
        )
    if kind == "sites":
        if not sites:
            raise FormRefusedError("Cochez au moins un site pour la première vague.", "sites")
        return ChosenSites(frozenset(sites)), "sites"
    if kind == "devices":
        if not devices:
            raise FormRefusedError("Cochez au moins un guichet pour la première vague.", "devices")
        return ChosenDevices(frozenset(devices)), "devices"
    count = _one(fields, "canary") or "0"
    if not count.isdigit() or int(count) > MAX_CANARY:
        raise FormRefusedError(f"Guichets témoins : un nombre entre 0 et {MAX_CANARY}.", "canary")
    return (Canary(int(count)) if int(count) else None), ""


def _threshold(fields: FormFields) -> Threshold:
    failures = _one(fields, "max_failures")
    if failures and (not failures.isdigit() or not 1 <= int(failures) <= MAX_FAILURES):
        message = f"Arrêt automatique : un nombre d'échecs entre 1 et {MAX_FAILURES}."
        raise FormRefusedError(message, "threshold")
    pct = _number(fields, "max_failure_pct", "Arrêt automatique : un pourcentage entre 0 et 100.")
    if not failures and pct is None:
        raise FormRefusedError(
            "Arrêt automatique : indiquez un nombre d'échecs, un pourcentage, ou les deux.",
            "threshold",
        )
    try:
        return Threshold(int(failures) if failures else None, pct)
    except RolloutError as exc:
        raise FormRefusedError(str(exc), "threshold") from None


def _hour(fields: FormFields, name: str, which: str) -> time | None:
    text = _one(fields, name).strip()
    if not text:
        return None
    match = HHMM_RE.fullmatch(text)
    if match is None:
        shown = text[:16]
        raise FormRefusedError(
            f"Plage de nuit : heure {which} invalide « {shown} » (HH:MM, par exemple 22:00).",
            "night",
        )
    return time(int(match.group(1)), int(match.group(2)))


def _number(fields: FormFields, name: str, message: str) -> float | None:
    text = _one(fields, name).strip()
    if not text:
        return None
    if NUMBER_RE.fullmatch(text) is None:
        raise FormRefusedError(message, "threshold" if name == "max_failure_pct" else name)
    return float(text.replace(",", "."))


def _one(fields: FormFields, name: str) -> str:
    found = fields.get(name, ())
    return found[0] if found else ""
