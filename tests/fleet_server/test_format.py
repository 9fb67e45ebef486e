"""What the pages say, from fleet_server/web/format.py: Paris time, French dates (``1er``),
event and audit details in French words, messages as sentences."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fleet_server.web import format as fmt
from guichet.schedule import when_fr

NBSP = "\u00a0"
SERVICES = {"caf": "Caf", "msa": "MSA"}


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(2025, 1, 1), "mercredi 1er janvier 2025"),
        (date(2025, 1, 2), "jeudi 2 janvier 2025"),
        (date(2025, 8, 31), "dimanche 31 août 2025"),
    ],
)
def test_dates_say_the_first_of_the_month_as_french_does(day: date, text: str) -> None:
    assert fmt.format_date(day) == text
    assert fmt.day_label(day, date(2024, 12, 1)) == text.removesuffix(f" {day.year}")
    assert fmt.day_label(day, day) == "Aujourd'hui, " + text.removesuffix(f" {day.year}")


def test_the_counter_screen_says_1er_too() -> None:
    now = datetime(2025, 12, 20, 9, tzinfo=UTC)
    assert when_fr(datetime(2026, 1, 1, 13, tzinfo=UTC), now) == "jeudi 1er janvier 14 h"


def test_a_charts_day_ticks_say_1er_in_paris_time() -> None:
    days = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
    assert fmt.short_day(datetime(2024, 12, 31, 23, 30, tzinfo=UTC), days) == "mer. 1er"
    assert fmt.short_day(datetime(2025, 1, 2, 12, tzinfo=UTC), days) == "jeu. 2"


def test_times_are_paris_time_across_daylight_saving() -> None:
    assert fmt.format_datetime(datetime(2025, 1, 15, 12, tzinfo=UTC)) == "15/01/2025 13:00:00"
    assert fmt.format_datetime(datetime(2025, 7, 15, 12, tzinfo=UTC)) == "15/07/2025 14:00:00"
    assert fmt.format_datetime(None) == "—"


def test_event_details_are_french_words() -> None:
    data = {
        "call_id": "c1",
        "service": "caf",
        "duration_s": 754.2,
        "reason": "hangup_agent",
    }
    assert fmt.event_details(data, SERVICES) == [
        f"Appel{NBSP}: c1",
        f"Service{NBSP}: Caf",
        f"Durée{NBSP}: 12 min",
        f"Fin{NBSP}: Raccroché par l'agent",
    ]
    error = {"component": "outbox", "detail": None, "dropped_total": 12}
    assert fmt.event_details(error, SERVICES) == [
        f"Élément{NBSP}: File d'envoi",
        f"Détail{NBSP}: —",
        f"Messages perdus au total{NBSP}: 12",
    ]
    plugged = {"kind": "printer", "product": "HP LaserJet"}
    assert fmt.event_details(plugged, SERVICES) == [
        f"Type{NBSP}: Imprimante",
        f"Produit{NBSP}: HP LaserJet",
    ]


def test_a_selftest_event_says_each_check_and_an_unknown_key_as_it_came() -> None:
    data = {"camera": "ok", "printer": "echec: pas de papier", "light": "ignore", "passed": False}
    assert fmt.event_details(data, SERVICES) == [
        f"Caméra{NBSP}: réussi",
        f"Imprimante{NBSP}: échec{NBSP}: pas de papier",
        f"Voyant{NBSP}: ignoré",
        f"Autotest réussi{NBSP}: non",
    ]
    assert fmt.event_details({"new_key": 1.5}, SERVICES) == [f"new_key{NBSP}: 1,5"]


def test_audit_details_are_french_words_not_python_reprs() -> None:
    detail = {"service": "msa", "role": "agent", "site": None, "via": "cli"}
    assert fmt.audit_details(detail, SERVICES) == [
        f"Rôle{NBSP}: Agent",
        f"Service{NBSP}: MSA",
        f"Site{NBSP}: —",
        f"Par{NBSP}: ligne de commande",
    ]
    booked = {"start": "2025-03-03T08:30:00+00:00", "agent_user_id": 4, "service": "gone"}
    assert fmt.audit_details(booked, SERVICES) == [
        f"Service{NBSP}: gone",  # a service since deleted: its code
        f"Début{NBSP}: 03/03/2025 09:30:00",
        f"Agent (n°){NBSP}: 4",
    ]
    rule = {"mode": "slot", "weekday": 1, "day": "2025-05-01", "pre_approved": True, "agents": []}
    assert fmt.audit_details(rule, SERVICES) == [
        f"Approuvé d'avance{NBSP}: oui",
        f"Accès{NBSP}: accès libre",
        f"Jour{NBSP}: mardi",
        f"Date{NBSP}: jeudi 1er mai 2025",
        f"Agents (n°){NBSP}: —",
    ]
    for items in (fmt.audit_details(d, SERVICES) for d in (detail, booked, rule)):
        assert not any(word in " ".join(items) for word in ("None", "True", "False", "[", "="))


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("l'identifiant « x » existe déjà", "L'identifiant « x » existe déjà."),
        ("Code incorrect.", "Code incorrect."),
        ("  service inconnu « caf »  ", "Service inconnu « caf »."),
        ("", ""),
    ],
)
def test_messages_are_sentences(message: str, text: str) -> None:
    assert fmt.sentence(message) == text


def test_status_reasons_are_french() -> None:
    assert fmt.status_reason_label("shutdown") == "Arrêt normal du guichet"
    assert fmt.status_reason_label("no-telemetry") == "Plus aucune mesure reçue"
    assert fmt.status_reason_label("from-the-future") == "from-the-future"
    assert fmt.status_reason_label(None) == "—"


def test_a_rollout_s_waves_in_the_audit_are_french_words() -> None:
    waves = [
        {"kind": "canary", "count": 1},
        {"kind": "sites", "sites": ["Gorre", "Châlus"]},
        {"kind": "devices", "device_ids": ["gorre-01"]},
        {"kind": "percent", "pct": 12.5},
        {"kind": "canary", "count": 3},
        {"kind": "rest"},
    ]
    assert fmt.audit_details({"rollout_id": 2, "waves": waves}, SERVICES) == [
        f"Déploiement (n°){NBSP}: 2",
        f"Vagues{NBSP}: 1 guichet pilote ; sites{NBSP}: Gorre, Châlus ; guichets choisis{NBSP}:"
        f" gorre-01 ; 12,5{NBSP}% des guichets ; 3 guichets pilotes ; tous les autres",
    ]
    assert "{" not in " ".join(fmt.audit_details({"waves": [{"kind": "later"}]}, SERVICES))
