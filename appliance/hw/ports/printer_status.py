"""From a CUPS queue's IPP attributes to the contract's ``PrinterState``.

Pure code shared by the CUPS adapter (``appliance.hw.cups``) and the simulated printer,
so that both judge a printer's health in exactly the same way; it imports no CUPS library and
lives with the printer port, which both implement. The keywords are IPP's ``printer-state-reasons``
(RFC 8011 §5.4.12 and the PWG registry); a keyword may carry a severity suffix
(``-report``, ``-warning``, ``-error``) which CUPS passes through from the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from guichet.contract import DeviceHealth, PrinterState
from guichet.printing import FRENCH_REASONS, GENERIC_FRENCH, split_reason

# IPP printer-state values (RFC 8011 §5.4.11).
QueueState = Literal["idle", "processing", "stopped", "unknown"]
IPP_STATES: dict[int, QueueState] = {3: "idle", 4: "processing", 5: "stopped"}

# A citizen's document cannot come out while any of these holds.
ERROR_REASONS = frozenset(
    {
        "media-empty",
        "media-jam",
        "media-needed",
        "offline",
        "paused",
        "stopped",
        "shutdown",
        "door-open",
        "cover-open",
        "interlock-open",
        "toner-empty",
        "marker-supply-empty",
        "marker-waste-full",
        "input-tray-missing",
        "output-tray-missing",
        "output-area-full",
        "fuser-over-temp",
        "fuser-under-temp",
    }
)
# Printing still works, but someone should act soon.
WARNING_REASONS = frozenset(
    {
        "media-low",
        "toner-low",
        "marker-supply-low",
        "marker-waste-almost-full",
        "output-area-almost-full",
        "developer-low",
        "opc-near-eol",
        "connecting-to-device",  # the USB backend waits for an unplugged printer
        "cups-missing-filter",
    }
)
MAX_REASONS = 32  # the contract's bound on PrinterState.reasons
MAX_TEXT = 128  # the contract's bound on a model string


def reason_health(reason: str) -> DeviceHealth:
    """How bad one ``printer-state-reasons`` keyword is."""
    base, severity = split_reason(reason)
    if base in ERROR_REASONS or severity == "error":
        return DeviceHealth.ERROR
    if base in WARNING_REASONS or severity == "warning":
        return DeviceHealth.WARNING
    return DeviceHealth.OK


def clean_reasons(reasons: Iterable[str]) -> list[str]:
    """CUPS says ``["none"]`` when all is well: drop it, keep order, bound the list."""
    return [r for r in reasons if r and r != "none"][:MAX_REASONS]


def printer_state(
    *,
    ipp_state: int | None,
    reasons: Iterable[str],
    message: str | None,
    model: str | None,
    accepting_jobs: bool = True,
) -> PrinterState:
    """Judge a queue: the worst of its reasons, and *error* whenever the queue is stopped."""
    kept = clean_reasons(reasons)
    state: QueueState = IPP_STATES.get(ipp_state or 0, "unknown")
    severities = {reason_health(r) for r in kept}
    if state == "stopped" or not accepting_jobs or DeviceHealth.ERROR in severities:
        health = DeviceHealth.ERROR
    elif DeviceHealth.WARNING in severities:
        health = DeviceHealth.WARNING
    else:
        health = DeviceHealth.OK
    detail = message or None
    if detail is None and not accepting_jobs:
        detail = "refuse les impressions"
    if detail is None and health is not DeviceHealth.OK:
        detail = next((r for r in kept if reason_health(r) is health), None)
    return PrinterState(
        health=health,
        model=model[:MAX_TEXT] if model else None,
        detail=detail[:256] if detail else None,
        state=state,
        reasons=kept,
    )


def state_from_attributes(attributes: Mapping[str, object]) -> PrinterState:
    """Build the state from ``cups.Connection.getPrinterAttributes`` output."""
    raw_state = attributes.get("printer-state")
    raw_reasons = attributes.get("printer-state-reasons")
    raw_message = attributes.get("printer-state-message")
    raw_model = attributes.get("printer-make-and-model")
    accepting = attributes.get("printer-is-accepting-jobs", True)
    if isinstance(raw_reasons, str):  # a single keyword may come back unwrapped
        raw_reasons = [raw_reasons]
    return printer_state(
        ipp_state=raw_state if isinstance(raw_state, int) else None,
        reasons=[str(r) for r in raw_reasons] if isinstance(raw_reasons, list) else [],
        message=raw_message if isinstance(raw_message, str) else None,
        model=raw_model if isinstance(raw_model, str) else None,
        accepting_jobs=accepting is not False,
    )


def absent_printer(detail: str, model: str | None = None) -> PrinterState:
    return PrinterState(health=DeviceHealth.ABSENT, detail=detail[:256], model=model)


def failed_printer(detail: str) -> PrinterState:
    return PrinterState(health=DeviceHealth.ERROR, detail=detail[:256])


def french_reason(state: PrinterState) -> str:
    """Why ``state`` cannot print, in French; the printer's own message in parentheses."""
    if state.health is DeviceHealth.ABSENT:
        return "Aucune imprimante n'est branchée au guichet."
    bases = {split_reason(r)[0] for r in state.reasons}
    text = next((t for keys, t in FRENCH_REASONS if bases & set(keys)), None)
    if text is None:
        text = GENERIC_FRENCH if state.state != "stopped" else FRENCH_REASONS[-1][1]
    if state.detail and state.detail not in bases:
        text = f"{text} Message de l'imprimante : « {state.detail[:120]} »."
    return text


def can_print(state: PrinterState) -> bool:
    return state.health in (DeviceHealth.OK, DeviceHealth.WARNING)
