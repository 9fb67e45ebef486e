"""The server's own vocabularies: every role, alert kind and notification word has its French
label."""

from __future__ import annotations

from fleet_server.mqtt.alert_rules import (
    ALERT_LABELS,
    PRESENCE_ALERTS,
    ROLLOUT_ALERTS,
    TELEMETRY_ALERTS,
    AlertKind,
)
from fleet_server.mqtt.notify.vocab import (
    ALERT_EVENT_LABELS,
    CHANNEL_LABELS,
    DELIVERY_STATUS_LABELS,
    URGENT_KINDS,
    AlertEvent,
    Channel,
    DeliveryStatus,
)
from fleet_server.security.roles import ROLE_LABELS, Role
from fleet_server.web.format import alert_label


def test_every_role_has_a_label() -> None:
    assert set(ROLE_LABELS) == set(Role)
    assert all(ROLE_LABELS[role].strip() for role in Role)


def test_every_alert_kind_has_a_label_and_an_owner() -> None:
    assert set(ALERT_LABELS) == set(AlertKind)
    assert {alert_label(kind) for kind in AlertKind} == set(ALERT_LABELS.values())
    owners = (PRESENCE_ALERTS, TELEMETRY_ALERTS, ROLLOUT_ALERTS)
    assert set().union(*owners) == set(AlertKind)
    assert sum(len(owner) for owner in owners) == len(AlertKind)  # one owner each


def test_every_notification_word_has_a_label() -> None:
    pairs = (
        (CHANNEL_LABELS, Channel),
        (ALERT_EVENT_LABELS, AlertEvent),
        (DELIVERY_STATUS_LABELS, DeliveryStatus),
    )
    for labels, vocabulary in pairs:
        assert set(labels) == set(vocabulary)
        assert all(labels[member].strip() for member in vocabulary)
    assert set(URGENT_KINDS) <= set(AlertKind)
