"""Which telemetry raises which alert, and the alert vocabulary (kinds and French labels).

Pure functions of one telemetry message and the settings' thresholds; :mod:`fleet_server.mqtt.store`
raises and clears the alerts, :mod:`fleet_server.mqtt.health` owns the presence alerts.
"""

from __future__ import annotations

from enum import StrEnum

from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import DEVICE_HEALTH_LABELS, DeviceHealth
from guichet.printing import describe_reasons


class AlertKind(StrEnum):
    """What an open alert is about (``Alert.kind``)."""

    OFFLINE = "offline"
    SILENT = "silent"
    PRINTER = "printer"
    SCANNER = "scanner"
    CAMERA = "camera"
    DISK = "disk"
    TEMPERATURE = "temperature"
    THROTTLED = "throttled"
    UPDATE_STOPPED = "update_stopped"  # a rollout stopped at its error threshold here


ALERT_LABELS: dict[str, str] = {  # the dashboard's French names, one per kind
    AlertKind.OFFLINE: "Hors ligne",
    AlertKind.SILENT: "Silencieux",
    AlertKind.PRINTER: "Imprimante en erreur",
    AlertKind.SCANNER: "Scanner absent ou en erreur",
    AlertKind.CAMERA: "Caméra absente ou en erreur",
    AlertKind.DISK: "Disque presque plein",
    AlertKind.TEMPERATURE: "Température élevée",
    AlertKind.THROTTLED: "Processeur bridé",
    AlertKind.UPDATE_STOPPED: "Déploiement arrêté",
}
PRESENCE_ALERTS = (AlertKind.OFFLINE, AlertKind.SILENT)  # raised by the health check
TELEMETRY_ALERTS = (
    AlertKind.PRINTER,
    AlertKind.SCANNER,
    AlertKind.CAMERA,
    AlertKind.DISK,
    AlertKind.TEMPERATURE,
    AlertKind.THROTTLED,
)

# Raised by the rollout runner (fleet_server.updates.alerts), cleared when an administrator
# resumes or cancels the rollout.
ROLLOUT_ALERTS = (AlertKind.UPDATE_STOPPED,)

DETAIL_MAX_CHARS = 256  # Device.printer_detail and Alert.detail column width
PRINTER_BAD = frozenset({DeviceHealth.ERROR, DeviceHealth.WARNING, DeviceHealth.ABSENT})
MISSING = frozenset({DeviceHealth.ERROR, DeviceHealth.ABSENT})


def is_throttled(tel: contract.Telemetry) -> bool:
    """Throttled or under-voltage right now (bits 0 and 2 of get_throttled)."""
    t = tel.throttling
    return t is not None and (t.throttled or t.under_voltage)


def printer_detail(printer: contract.PrinterState) -> str | None:
    """What the dashboard says about a printer, in French: its IPP reasons' words, else its
    own message, else its health."""
    if text := describe_reasons(printer.reasons):
        return text[:DETAIL_MAX_CHARS]
    if printer.detail:
        return printer.detail[:DETAIL_MAX_CHARS]
    return None if printer.health is DeviceHealth.OK else _health(printer.health).lower()


def _health(health: DeviceHealth) -> str:
    return DEVICE_HEALTH_LABELS[health]


def telemetry_conditions(
    tel: contract.Telemetry, settings: Settings
) -> dict[AlertKind, str | None]:
    """For each telemetry alert kind, its detail when the condition holds, else None."""
    p = tel.peripherals
    temp = tel.cpu_temperature_c
    printer = None
    if p.printer.health in PRINTER_BAD:
        printer = (
            f"{_health(p.printer.health)}\u00a0: {printer_detail(p.printer) or p.printer.state}"
        )
    return {
        AlertKind.PRINTER: printer,
        AlertKind.SCANNER: _peripheral_problem(p.scanner),
        AlertKind.CAMERA: _peripheral_problem(p.camera),
        AlertKind.DISK: (
            f"{tel.disk_used_pct:.0f} %" if tel.disk_used_pct > settings.alert_disk_pct else None
        ),
        AlertKind.TEMPERATURE: (
            f"{temp:.1f} °C" if temp is not None and temp > settings.alert_temperature_c else None
        ),
        AlertKind.THROTTLED: (
            f"sous-tension ou surchauffe (get_throttled=0x{tel.throttling.raw:x})"
            if tel.throttling is not None and is_throttled(tel)
            else None
        ),
    }


def _peripheral_problem(peripheral: contract.Peripheral) -> str | None:
    if peripheral.health not in MISSING:
        return None
    label = _health(peripheral.health)
    return f"{label}\u00a0: {peripheral.detail}" if peripheral.detail else label
