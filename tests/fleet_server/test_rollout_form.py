"""The « Lancer un déploiement » form of ``/admin/versions`` (issue 13, docs/updates.md): a
first wave of chosen sites or chosen counters, a night window and the error threshold,
planned by the API's own ``manage.launch``. What it refuses — a forged or withdrawn site or
counter, a chosen wave with nothing chosen, a half night window, bad hours, no threshold —
comes back to the form (post/redirect/get) with the French reason, the field marked invalid
and linked to it, what was typed kept, and nothing planned or audited (the JSON API's own
refusals of the same: ``test_rollouts_api.py``). The real app on a fresh database (SQLite
and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, CounterUpdateRecord, Device, Release, RolloutRecord
from tests.support.webapp import CSRF_RE, WebApp, running_app

PAGE = "/admin/versions"
SITES = {"gorre-01": "Vallée de la Gorre", "gorre-02": "Vallée de la Gorre",
         "chalus-01": "Monts de Châlus", "chalus-02": "Monts de Châlus"}  # fmt: skip
ON_IT = "chalus-02"  # already runs 1.5.0: in service, not planned
NOT_ENROLLED = ("bussiere-01", "Bussière-Galant")  # no broker account
WITHDRAWN = ("oradour-01", "Oradour")  # revoked: its site has no counter in service


@pytest.fixture
def app(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as web:
        web.add_user("admin", "admin")
        now = datetime.now(UTC)
        with web.sessions.begin() as session:
            for device_id, site in SITES.items():
                session.add(
                    Device(id=device_id, site=site, name=f"Guichet {device_id}", state="online",
                           software_version="1.5.0" if device_id == ON_IT else "1.4.0",
                           broker_password_hash="$7$x")
                )  # fmt: skip
            session.add(Device(id=NOT_ENROLLED[0], site=NOT_ENROLLED[1], state="online"))
            session.add(Device(id=WITHDRAWN[0], site=WITHDRAWN[1], state="offline", revoked_at=now))
            session.add(
                Release(
                    version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10,
                    sha256="a" * 64, path="/nowhere.raucb", uploaded_at=now, uploaded_by="admin",
                )
            )  # fmt: skip
        assert web.login().status_code == 303
        yield web


def _release_id(app: WebApp) -> int:
    with app.sessions() as session:
        return session.scalars(select(Release.id)).one()


def _post(app: WebApp, **fields: Any) -> Any:
    page = app.client.get(PAGE).text
    match = CSRF_RE.search(page)
    assert match
    data: dict[str, Any] = {
        "release_id": str(_release_id(app)), "first": "canary", "canary": "1", "percent": "25",
        "night_start": "", "night_end": "", "max_failures": "1", "max_failure_pct": "",
        "csrf_token": match.group(1),
    } | fields  # fmt: skip
    return app.client.post("/admin/rollouts", data=data, follow_redirects=False)


def _nothing_planned(app: WebApp) -> bool:
    with app.sessions() as session:
        rollouts = session.scalar(select(RolloutRecord.id).limit(1))
        counters = session.scalar(select(CounterUpdateRecord.id).limit(1))
        acts = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("rollout.%")))
        return rollouts is None and counters is None and not list(acts)


def _field(page: str, name: str, value: str | None = None) -> str:
    """The ``<input>`` or ``<select>`` tag of the rollout form's field ``name`` (``value``:
    the checkbox or radio with that value)."""
    form = page[page.index('id="rollout-form"') :]
    shown = "" if value is None else f' value="{re.escape(value)}"'
    found = re.search(rf'<(?:input|select)[^>]*name="{name}"{shown}[^>]*>', form)
    assert found, (name, value)
    return found.group(0)


def test_a_rollout_on_chosen_sites_with_a_night_window(app: WebApp) -> None:
    page = app.client.get(PAGE).text
    for device_id in (d for d in SITES if d != ON_IT):  # every counter in service is offered…
        assert _field(page, "devices", device_id)
    assert f'value="{NOT_ENROLLED[0]}"' not in page  # …and no other
    assert f'value="{WITHDRAWN[1]}"' not in page
    assert "Monts de Châlus (2 guichets)" in page

    answer = _post(app, first="sites", sites=["Vallée de la Gorre"], percent="50",
                   night_start="22:00", night_end="06:00", max_failures="2",
                   max_failure_pct="20")  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/rollouts/1"
    with app.sessions() as session:
        record = session.scalars(select(RolloutRecord)).one()
        assert record.state == "running"
        assert record.wave_specs == [
            {"kind": "sites", "sites": ["Vallée de la Gorre"]},
            {"kind": "percent", "pct": 50.0},
            {"kind": "rest"},
        ]
        assert record.waves == [["gorre-01", "gorre-02"], ["chalus-01"]]
        assert (record.night_start, record.night_end) == (time(22), time(6))
        assert (record.max_failures, record.max_failure_pct) == (2, 20.0)
        created = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "rollout.create")
        ).one()
        assert created.detail["night"] == "22:00–06:00"
        assert created.detail["waves"] == record.wave_specs
        acts = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
        assert [a for a in acts if a.startswith("rollout.")] == ["rollout.create", "rollout.start"]
    shown = app.client.get("/admin/rollouts/1").text
    assert "Déploiement lancé." in shown
    assert "la nuit seulement, de 22 h à 6 h (heure de Paris)" in shown
    assert "à 2 échec(s) ou à 20 % d'échecs" in shown


def test_a_rollout_on_chosen_counters(app: WebApp) -> None:
    answer = _post(app, first="devices", devices=["gorre-02", "chalus-01"], percent="0")
    assert answer.status_code == 303
    with app.sessions() as session:
        record = session.scalars(select(RolloutRecord)).one()
        assert record.wave_specs == [
            {"kind": "devices", "device_ids": ["chalus-01", "gorre-02"]},
            {"kind": "rest"},
        ]
        assert record.waves == [["chalus-01", "gorre-02"], ["gorre-01"]]
        assert (record.night_start, record.night_end) == (None, None)
        assert (record.max_failures, record.max_failure_pct) == (1, None)


FORGED_SITE = "Atlantide"
LONG_SITE = "x" * 300

# Each refusal: the fields changed from a valid form, the French reason, the field it is
# about (marked invalid, linked to the reason) as (name, value of a checkbox or radio).
REFUSALS: list[tuple[str, dict[str, Any], str, tuple[str, str | None]]] = [
    ("a forged site", {"first": "sites", "sites": [FORGED_SITE]},
     f"Site inconnu ou sans guichet en service : « {FORGED_SITE} ».", ("sites", None)),
    ("a real site and a forged one", {"first": "sites", "sites": ["Monts de Châlus", "Z"]},
     "Site inconnu ou sans guichet en service : « Z ».", ("sites", None)),
    ("the site of a withdrawn counter", {"first": "sites", "sites": [WITHDRAWN[1]]},
     f"Site inconnu ou sans guichet en service : « {WITHDRAWN[1]} ».", ("sites", None)),
    ("the site of a counter not enrolled", {"first": "sites", "sites": [NOT_ENROLLED[1]]},
     f"Site inconnu ou sans guichet en service : « {NOT_ENROLLED[1]} ».", ("sites", None)),
    ("an empty site", {"first": "sites", "sites": [""]},
     "Site inconnu ou sans guichet en service : « (sans nom) ».", ("sites", None)),
    ("a forged long site", {"first": "sites", "sites": [LONG_SITE]},
     f"« {'x' * 64}… »", ("sites", None)),
    ("a forged counter", {"first": "devices", "devices": ["gorre-01", "intrus-99"]},
     "Guichet inconnu ou retiré : « intrus-99 ».", ("devices", "gorre-01")),
    ("a withdrawn counter", {"first": "devices", "devices": [WITHDRAWN[0]]},
     f"Guichet inconnu ou retiré : « {WITHDRAWN[0]} ».", ("devices", "gorre-01")),
    ("a counter not enrolled", {"first": "devices", "devices": [NOT_ENROLLED[0]]},
     f"Guichet inconnu ou retiré : « {NOT_ENROLLED[0]} ».", ("devices", "gorre-01")),
    ("sites, none ticked", {"first": "sites"},
     "Cochez au moins un site pour la première vague.", ("sites", None)),
    ("counters, none ticked", {"first": "devices"},
     "Cochez au moins un guichet pour la première vague.", ("devices", "gorre-01")),
    ("sites ticked for a canary", {"first": "canary", "sites": ["Monts de Châlus"]},
     "pas la première vague qui les utilise", ("first", "canary")),
    ("counters ticked for sites", {"first": "sites", "sites": ["Monts de Châlus"],
                                   "devices": ["gorre-01"]},
     "pas la première vague qui les utilise", ("first", "sites")),
    ("a forged first wave", {"first": "everyone"},
     "Choisissez la première vague.", ("first", "canary")),
    ("a night's start only", {"night_start": "22:00"},
     "Plage de nuit : indiquez l'heure de début et l'heure de fin, ou aucune des deux.",
     ("night_start", None)),
    ("a night's end only", {"night_end": "06:00"},
     "Plage de nuit : indiquez l'heure de début et l'heure de fin", ("night_end", None)),
    ("an hour past 23", {"night_start": "25:00", "night_end": "06:00"},
     "Plage de nuit : heure de début invalide « 25:00 » (HH:MM, par exemple 22:00).",
     ("night_start", None)),
    ("an hour in words", {"night_start": "22:00", "night_end": "6h"},
     "Plage de nuit : heure de fin invalide « 6h »", ("night_end", None)),
    ("the same hour twice", {"night_start": "22:00", "night_end": "22:00"},
     "La plage de nuit commence et finit à la même heure.", ("night_start", None)),
    ("a night shorter than an update", {"night_start": "23:50", "night_end": "00:20"},
     "La plage de nuit est plus courte qu'une mise à jour (45 minutes au moins).",
     ("night_end", None)),
    ("no threshold at all", {"max_failures": "", "max_failure_pct": ""},
     "Arrêt automatique : indiquez un nombre d'échecs, un pourcentage, ou les deux.",
     ("max_failures", None)),
    ("no failure at all", {"max_failures": "0"},
     "Arrêt automatique : un nombre d'échecs entre 1 et 10000.", ("max_failures", None)),
    ("a percentage of nothing", {"max_failures": "", "max_failure_pct": "0"},
     "Le seuil d'erreurs est un pourcentage entre 0 et 100.", ("max_failure_pct", None)),
    ("a second wave past 100 %", {"percent": "150"},
     "Deuxième vague : un pourcentage entre 0 et 100.", ("percent", None)),
    ("a canary in words", {"canary": "un"},
     "Guichets témoins : un nombre entre 0 et 10000.", ("canary", None)),
    ("a forged release", {"release_id": "999"}, "Version inconnue.", ("release_id", None)),
    ("no release", {"release_id": ""}, "Choisissez une version.", ("release_id", None)),
]  # fmt: skip


def test_what_the_form_refuses_comes_back_to_it_and_nothing_is_planned(app: WebApp) -> None:
    for case, fields, reason, (name, value) in REFUSALS:
        answer = _post(app, **fields)
        assert answer.status_code == 303, case
        assert answer.headers["location"] == f"{PAGE}#rollout-form", case
        page = app.client.get(PAGE).text
        assert reason in page.replace("&#39;", "'"), case
        assert 'id="rollout-error"' in page, case
        invalid = _field(page, name, value)
        assert 'aria-invalid="true"' in invalid, case
        assert re.search(r'aria-describedby="rollout-error\b', invalid), case
        assert _nothing_planned(app), case
        for kept in ("night_start", "night_end"):  # what was typed comes back
            if fields.get(kept):
                assert f'value="{fields[kept]}"' in _field(page, kept), case
        for ticked in fields.get("sites", []) + fields.get("devices", []):
            if ticked in SITES or ticked == "Monts de Châlus":
                assert " checked" in _field(page, "(?:sites|devices)", ticked), case
    again = app.client.get(PAGE).text  # the flash is shown once
    assert 'id="rollout-error"' not in again


def test_a_nul_in_a_chosen_site_is_a_bad_request(app: WebApp) -> None:
    answer = _post(app, first="sites", sites=["Vallée de la Gorre\x00"])
    assert answer.status_code == 400
    assert _nothing_planned(app)
