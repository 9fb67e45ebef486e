"""The notifications' vocabularies, with their French labels beside them."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from fleet_server.mqtt.alert_rules import AlertKind


class Channel(StrEnum):
    """How a target is told (``NotificationTarget.channel``)."""

    EMAIL = "email"
    WEBHOOK = "webhook"


CHANNEL_LABELS: Final[dict[str, str]] = {
    Channel.EMAIL: "Courriel",
    Channel.WEBHOOK: "Webhook",
}


class AlertEvent(StrEnum):
    """What a delivery tells (``NotificationDelivery.event``): an alert raised or cleared,
    or the daily summary (e-mail only; its ``alert_id`` is the day, :mod:`.summary`)."""

    RAISED = "raised"
    CLEARED = "cleared"
    SUMMARY = "summary"


ALERT_EVENT_LABELS: Final[dict[str, str]] = {
    AlertEvent.RAISED: "Alerte ouverte",
    AlertEvent.CLEARED: "Alerte levée",  # the alerts page's « Levées »
    AlertEvent.SUMMARY: "Résumé quotidien",
}


class DeliveryStatus(StrEnum):
    """Where a delivery stands (``NotificationDelivery.status``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up after the last attempt


DELIVERY_STATUS_LABELS: Final[dict[str, str]] = {
    DeliveryStatus.PENDING: "En attente",
    DeliveryStatus.SENT: "Envoyée",
    DeliveryStatus.FAILED: "Abandonnée",
}

# Sent at once even during a recipient's quiet hours (docs/notifications.md, "Quiet hours"):
# an overheating counter is a fire risk in a town hall, whatever the time. A counter offline
# at night is not: the town hall is closed, and the morning digest says it.
URGENT_KINDS: Final = frozenset({AlertKind.TEMPERATURE})
