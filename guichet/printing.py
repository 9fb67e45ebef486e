"""A printer's ``printer-state-reasons`` keywords (IPP, RFC 8011 §5.4.12 and the PWG
registry) in French: what the agent reads when a document cannot come out, and what the
dashboard says about a counter's printer. Both sides read the same words from here.

A keyword may carry a severity suffix (``-report``, ``-warning``, ``-error``) which CUPS passes
through from the backend; it does not change what the keyword means.
"""

from __future__ import annotations

from collections.abc import Iterable

SEVERITY_SUFFIXES = ("-report", "-warning", "-error")

# Why a document cannot come out, for the agent (full sentences), most specific first.
FRENCH_REASONS: list[tuple[tuple[str, ...], str]] = [
    (("media-empty", "media-needed"), "Plus de papier dans l'imprimante."),
    (("media-jam",), "Papier coincé dans l'imprimante."),
    (("door-open", "cover-open", "interlock-open"), "Un capot de l'imprimante est ouvert."),
    (("toner-empty", "marker-supply-empty"), "Plus d'encre ou de toner."),
    (("output-area-full", "marker-waste-full"), "Le bac de sortie de l'imprimante est plein."),
    (("offline", "shutdown"), "L'imprimante est éteinte ou hors ligne."),
    (("connecting-to-device",), "L'imprimante ne répond pas : est-elle branchée et allumée ?"),
    (("paused", "stopped"), "L'imprimante est arrêtée : file d'impression suspendue."),
]
GENERIC_FRENCH = "L'imprimante est en erreur."

# One keyword, for the dashboard (short, no final stop); an unknown keyword is shown as is.
REASON_LABELS: dict[str, str] = {
    "media-empty": "plus de papier",
    "media-needed": "papier à remettre",
    "media-low": "papier bientôt épuisé",
    "media-jam": "papier coincé",
    "door-open": "capot ouvert",
    "cover-open": "capot ouvert",
    "interlock-open": "capot ouvert",
    "toner-empty": "plus d'encre ou de toner",
    "marker-supply-empty": "plus d'encre ou de toner",
    "toner-low": "encre ou toner bientôt épuisé",
    "marker-supply-low": "encre ou toner bientôt épuisé",
    "developer-low": "révélateur bientôt épuisé",
    "marker-waste-full": "bac de récupération plein",
    "marker-waste-almost-full": "bac de récupération presque plein",
    "output-area-full": "bac de sortie plein",
    "output-area-almost-full": "bac de sortie presque plein",
    "input-tray-missing": "bac d'alimentation absent",
    "output-tray-missing": "bac de sortie absent",
    "fuser-over-temp": "four trop chaud",
    "fuser-under-temp": "four trop froid",
    "opc-near-eol": "tambour en fin de vie",
    "offline": "hors ligne",
    "shutdown": "éteinte",
    "paused": "file d'impression suspendue",
    "stopped": "file d'impression arrêtée",
    "connecting-to-device": "ne répond pas (débranchée ou éteinte ?)",
    "cups-missing-filter": "pilote d'impression manquant",
}


def split_reason(reason: str) -> tuple[str, str | None]:
    """``"media-empty-error"`` → ``("media-empty", "error")``; no suffix → ``(reason, None)``."""
    for suffix in SEVERITY_SUFFIXES:
        if reason.endswith(suffix):
            return reason[: -len(suffix)], suffix[1:]
    return reason, None


def reason_label(reason: str) -> str:
    """One keyword in French (its severity suffix dropped); unknown: the keyword itself."""
    base, _ = split_reason(reason)
    return REASON_LABELS.get(base, reason)


def describe_reasons(reasons: Iterable[str]) -> str:
    """The keywords in French, each once, in order: ``"plus de papier, capot ouvert"``."""
    labels: list[str] = []
    for reason in reasons:
        if reason and reason != "none" and (label := reason_label(reason)) not in labels:
            labels.append(label)
    return ", ".join(labels)
