"""What a counter puts in an event's ``data``: its keys (``EventField``) and the parts of a
counter they name (``Component``), each with its French labels next to it.

``Event.data`` stays an open dict on the wire (a newer counter may add a key; the server
shows a key it does not know as it came); these vocabularies are what both sides agree on.
"""

from __future__ import annotations

from enum import StrEnum


class EventField(StrEnum):
    """The keys counters put in an event's ``data``. A key not listed here (a newer
    counter's) is still accepted and shown as it came."""

    SOFTWARE_VERSION = "software_version"
    SITE = "site"
    COMPONENT = "component"  # a ``Component``
    DETAIL = "detail"
    MODEL = "model"
    DROPPED_TOTAL = "dropped_total"
    RESTARTS = "restarts"
    KIND = "kind"  # a plugged USB device's ``Component``
    VENDOR_ID = "vendor_id"
    PRODUCT_ID = "product_id"
    PRODUCT = "product"
    PATH = "path"
    CALL_ID = "call_id"
    SERVICE = "service"  # a service's code
    DURATION_S = "duration_s"
    REASON = "reason"  # a call's ``EndReason``
    FAILED = "failed"  # the self-test: checks failed (its other keys are ``Component``s)
    PASSED = "passed"
    # A call's quality, in ``call_ended`` (``guichet/quality.py``: units and bounds).
    MEASURED_S = "measured_s"
    VIDEO_KBPS_AVG = "video_kbps_avg"
    VIDEO_KBPS_MIN = "video_kbps_min"
    LOSS_PCT = "loss_pct"
    RTT_MS = "rtt_ms"
    FREEZES = "freezes"
    FROZEN_S = "frozen_s"
    RUNG_STEPS = "rung_steps"
    LOWEST_RUNG = "lowest_rung"
    AUDIO_GAPS_PCT = "audio_gaps_pct"


EVENT_FIELD_LABELS: dict[EventField, str] = {  # French, as a counter's page shows them
    EventField.SOFTWARE_VERSION: "Version du logiciel",
    EventField.SITE: "Site déclaré",
    EventField.COMPONENT: "Élément",
    EventField.DETAIL: "Détail",
    EventField.MODEL: "Modèle",
    EventField.DROPPED_TOTAL: "Messages perdus au total",
    EventField.RESTARTS: "Redémarrages",
    EventField.KIND: "Type",
    EventField.VENDOR_ID: "Fabricant USB",
    EventField.PRODUCT_ID: "Produit USB",
    EventField.PRODUCT: "Produit",
    EventField.PATH: "Emplacement",
    EventField.CALL_ID: "Appel",
    EventField.SERVICE: "Service",
    EventField.DURATION_S: "Durée",
    EventField.REASON: "Fin",
    EventField.FAILED: "Contrôles en échec",
    EventField.PASSED: "Autotest réussi",
    EventField.MEASURED_S: "Durée mesurée",
    EventField.VIDEO_KBPS_AVG: "Débit vidéo envoyé, moyenne (kbit/s)",
    EventField.VIDEO_KBPS_MIN: "Débit vidéo envoyé, minimum (kbit/s)",
    EventField.LOSS_PCT: "Paquets perdus (%)",
    EventField.RTT_MS: "Aller-retour (ms)",
    EventField.FREEZES: "Gels de l'image de l'agent",
    EventField.FROZEN_S: "Image de l'agent gelée (s)",
    EventField.RUNG_STEPS: "Changements de palier vidéo",
    EventField.LOWEST_RUNG: "Palier vidéo le plus bas",
    EventField.AUDIO_GAPS_PCT: "Voix de l'agent interrompue (% du temps)",
}


class Component(StrEnum):
    """A part of a counter an event may name: peripherals and USB device kinds, the
    agent's own tasks, its outbox, and the self-test's checks (``selftest`` keys)."""

    CAMERA = "camera"
    PRINTER = "printer"
    SCANNER = "scanner"
    BUTTON = "button"
    AUDIO = "audio"
    OTHER = "other"
    MICROPHONE = "microphone"
    SPEAKERS = "speakers"
    LIGHT = "light"
    SCREEN = "screen"
    NETWORK = "network"
    BROKER = "broker"
    FLEET = "fleet"
    FLEET_LINK = "fleet-link"
    TELEMETRY = "telemetry"
    CALL = "call"
    STATUS_LIGHT = "status-light"
    OUTBOX = "outbox"


COMPONENT_LABELS: dict[Component, str] = {  # French
    Component.CAMERA: "Caméra",
    Component.PRINTER: "Imprimante",
    Component.SCANNER: "Scanner",
    Component.BUTTON: "Bouton",
    Component.AUDIO: "Audio",
    Component.OTHER: "Autre périphérique",
    Component.MICROPHONE: "Micro",
    Component.SPEAKERS: "Haut-parleurs",
    Component.LIGHT: "Voyant",
    Component.SCREEN: "Écran",
    Component.NETWORK: "Réseau",
    Component.BROKER: "Courtier MQTT",
    Component.FLEET: "Flotte",
    Component.FLEET_LINK: "Liaison avec la flotte",
    Component.TELEMETRY: "Envoi des mesures",
    Component.CALL: "Appels",
    Component.STATUS_LIGHT: "Voyant d'état",
    Component.OUTBOX: "File d'envoi",
}


class CheckOutcome(StrEnum):
    """A self-test check's outcome, the value of its key in a ``selftest`` event; a failed
    check's value is ``"echec: <what was seen>"``."""

    OK = "ok"
    FAILED = "echec"
    SKIPPED = "ignore"


CHECK_OUTCOME_LABELS: dict[CheckOutcome, str] = {  # French
    CheckOutcome.OK: "réussi",
    CheckOutcome.FAILED: "échec",
    CheckOutcome.SKIPPED: "ignoré",
}
