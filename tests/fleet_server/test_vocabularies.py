"""The server's own vocabularies: every role and every alert kind has its French label."""

from __future__ import annotations

from fleet_server.mqtt.alert_rules import ALERT_LABELS, PRESENCE_ALERTS, TELEMETRY_ALERTS, AlertKind
from fleet_server.security.roles import ROLE_LABELS, Role
from fleet_server.web.format import alert_label


def test_every_role_has_a_label() -> None:
    assert set(ROLE_LABELS) == set(Role)
    assert all(ROLE_LABELS[role].strip() for role in Role)


def test_every_alert_kind_has_a_label_and_an_owner() -> None:
    assert set(ALERT_LABELS) == set(AlertKind)
    assert {alert_label(kind) for kind in AlertKind} == set(ALERT_LABELS.values())
    assert set(PRESENCE_ALERTS) | set(TELEMETRY_ALERTS) == set(AlertKind)
    assert not set(PRESENCE_ALERTS) & set(TELEMETRY_ALERTS)
