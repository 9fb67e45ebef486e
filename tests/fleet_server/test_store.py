"""Applying contract messages to the database (store.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import (
    Alert,
    CommandRecord,
    Device,
    EventRecord,
    StatusChange,
    SurveyRecord,
    TelemetrySample,
)
from fleet_server.mqtt import store
from fleet_server.settings import Settings
from guichet import contract
from tests.fleet_server.storage_support import (
    ago,
    event,
    make_settings,
    received,
    status,
    telemetry,
)

DEVICE = "bandiat-01"


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def apply(
    sessions: sessionmaker[Session], settings: Settings, *items: store.Received
) -> list[bool]:
    with sessions.begin() as session:
        return store.apply_batch(session, list(items), settings)


def device(sessions: sessionmaker[Session], device_id: str = DEVICE) -> Device:
    with sessions() as session:
        found = session.get(Device, device_id)
        assert found is not None
        return found


def history(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(select(StatusChange).order_by(StatusChange.id))
        return [(r.state, r.reason) for r in rows]


def open_alerts(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))
        return {a.kind: a.detail for a in rows}


def test_status_transitions_are_kept_as_history(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    t0 = ago(minutes=10)
    apply(
        sessions,
        settings,
        received(DEVICE, status("online", at=t0, interval=15), received_at=t0),
    )
    d = device(sessions)
    assert (d.state, d.state_since, d.software_version) == ("online", t0, "1.2.3")
    assert d.telemetry_interval_s == 15
    apply(sessions, settings, received(DEVICE, status("online", at=ago(minutes=9))))
    assert history(sessions) == [("online", "connected")]  # no transition, no row

    will_received = ago(minutes=5)
    will = status("offline", at=t0, reason="last-will")  # stamped when it was armed
    apply(sessions, settings, received(DEVICE, will, received_at=will_received))
    d = device(sessions)
    assert (d.state, d.state_since) == ("offline", will_received)
    apply(sessions, settings, received(DEVICE, status("online", at=ago(minutes=1))))
    apply(sessions, settings, received(DEVICE, status("offline", reason="shutdown")))
    assert history(sessions) == [
        ("online", "connected"),
        ("offline", "last-will"),
        ("online", "connected"),
        ("offline", "shutdown"),
    ]


def test_a_status_cannot_move_a_counter_to_another_site(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Finding 3: the site and name given at enrolment or by an admin are the authority;
    what the counter says is kept as reported and changes neither access nor statistics."""
    with sessions.begin() as session:
        session.add(Device(id=DEVICE, site="Monts de Châlus", name="Mairie", state="unknown"))
    moved = status("online").model_copy(update={"site": "Vallée de la Gorre", "name": "Autre"})
    answer = contract.SurveyAnswer(
        id=uuid.uuid4(), at=contract.utcnow(), questionnaire_version=1, answers={"x": 1}
    )
    apply(sessions, settings, received(DEVICE, moved), received(DEVICE, answer))
    d = device(sessions)
    assert (d.site, d.name) == ("Monts de Châlus", "Mairie")
    assert (d.reported_site, d.reported_name) == ("Vallée de la Gorre", "Autre")
    with sessions() as session:
        assert session.scalars(select(SurveyRecord.site)).one() == "Monts de Châlus"
    apply(sessions, settings, received(DEVICE, status("offline", reason="shutdown")))
    d = device(sessions)  # a status without names keeps what was reported
    assert (d.reported_site, d.reported_name) == ("Vallée de la Gorre", "Autre")
    # A counter nobody named yet is not named by itself either.
    apply(sessions, settings, received("other-01", moved))
    other = device(sessions, "other-01")
    assert (other.site, other.name, other.reported_site) == ("", "", "Vallée de la Gorre")


def test_a_stale_retained_status_does_not_undo_a_newer_state(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    connected = ago(minutes=30)
    apply(sessions, settings, received(DEVICE, status("online", at=connected)))
    with sessions.begin() as session:  # what the health check does when telemetry stops
        found = session.get(Device, DEVICE)
        assert found is not None
        found.state, found.state_since = "silent", ago(minutes=5)
    replay = received(DEVICE, status("online", at=connected), retained=True)
    apply(sessions, settings, replay)
    assert device(sessions).state == "silent"
    fresh = received("other-01", status("online", at=connected), retained=True)
    apply(sessions, settings, fresh)  # an unknown counter takes its retained state
    assert device(sessions, "other-01").state == "online"


def test_clock_ahead_is_clamped_to_reception(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    now = contract.utcnow()
    future = now + timedelta(hours=2)
    apply(sessions, settings, received(DEVICE, status("online", at=future), received_at=now))
    assert device(sessions).state_since == now


def test_telemetry_updates_the_fleet_row_and_history(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    at = ago(seconds=2)
    tel = telemetry(
        at=at,
        cpu_temperature_c=61.5,
        disk_used_pct=33.0,
        load=(1.5, 1.0, 0.5),
        printer={"health": "ok", "state": "processing"},
        button={"health": "absent"},
    )
    item = received(DEVICE, tel)
    apply(sessions, settings, item)
    d = device(sessions)
    assert d.state == "online"  # unknown → online on its first telemetry
    assert (d.cpu_temperature_c, d.disk_used_pct, d.load1, d.throttled) == (61.5, 33.0, 1.5, False)
    assert (d.camera_health, d.printer_health, d.scanner_health) == ("ok", "ok", "ok")
    assert d.button_health == "absent"
    assert d.last_seen == d.last_telemetry_at == item.received_at
    assert d.last_telemetry is not None
    assert d.last_telemetry["peripherals"]["printer"]["state"] == "processing"
    assert history(sessions) == [("online", "telemetry")]
    with sessions() as session:
        sample = session.scalars(select(TelemetrySample)).one()
        # Dated on arrival: retention and charts follow the server's clock (finding 13).
        assert (sample.at, sample.cpu_temperature_c, sample.load1) == (item.received_at, 61.5, 1.5)


def test_telemetry_brings_a_silent_or_offline_counter_back(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Telemetry travels only while the counter is connected: arriving, it says "online"
    even when the status that said so was missed (a fresh MQTT session, finding 13)."""
    apply(sessions, settings, received(DEVICE, status("offline", reason="last-will")))
    apply(sessions, settings, received(DEVICE, telemetry()))
    assert device(sessions).state == "online"
    with sessions.begin() as session:
        found = session.get(Device, DEVICE)
        assert found is not None
        found.state = "silent"
    apply(sessions, settings, received(DEVICE, telemetry()))
    assert device(sessions).state == "online"
    assert history(sessions) == [
        ("offline", "last-will"),
        ("online", "telemetry"),
        ("online", "telemetry"),
    ]


def test_alerts_are_raised_once_and_cleared(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    throttling = {
        "raw": 5,
        "under_voltage": True,
        "frequency_capped": False,
        "throttled": True,
        "soft_temperature_limit": False,
        "occurred_since_boot": True,
    }
    bad = telemetry(
        cpu_temperature_c=settings.alert_temperature_c + 2,
        disk_used_pct=settings.alert_disk_pct + 3,
        throttling=throttling,
        printer={"health": "error", "state": "stopped", "reasons": ["media-empty-error"]},
        scanner={"health": "absent"},
        camera={"health": "absent", "detail": "no /dev/video0"},
    )
    apply(sessions, settings, received(DEVICE, bad), received(DEVICE, bad))
    apply(sessions, settings, received(DEVICE, bad))
    alerts = open_alerts(sessions)
    assert set(alerts) == {"printer", "scanner", "camera", "disk", "temperature", "throttled"}
    # In French, as the dashboard shows them (issue 17, point 15): no IPP keyword, no "error:".
    assert alerts["printer"] == "En erreur\u00a0: plus de papier"
    assert alerts["camera"] == "Absent\u00a0: no /dev/video0"
    assert alerts["scanner"] == "Absent"
    assert alerts["throttled"].startswith("sous-tension ou surchauffe (get_throttled=0x")
    assert device(sessions).open_alerts == 6
    assert device(sessions).printer_detail == "plus de papier"

    jam = bad.model_copy(
        update={
            "peripherals": bad.peripherals.model_copy(
                update={"printer": contract.PrinterState(health="error", reasons=["media-jam"])}
            )
        }
    )
    apply(sessions, settings, received(DEVICE, jam))
    assert open_alerts(sessions)["printer"] == "En erreur\u00a0: papier coincé"  # new detail

    apply(sessions, settings, received(DEVICE, telemetry()))
    assert open_alerts(sessions) == {}
    assert device(sessions).open_alerts == 0
    with sessions() as session:
        alerts_rows = session.scalars(select(Alert)).all()
        assert len(alerts_rows) == 6
        assert all(a.cleared_at is not None and a.cleared_at >= a.raised_at for a in alerts_rows)


def test_printer_toner_low_warning_is_an_alert(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    low = telemetry(printer={"health": "warning", "reasons": ["toner-low-report"]})
    apply(sessions, settings, received(DEVICE, low))
    assert open_alerts(sessions)["printer"] == "Attention\u00a0: encre ou toner bientôt épuisé"


def test_the_database_allows_one_open_alert_per_kind(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    apply(sessions, settings, received(DEVICE, status()))
    now = contract.utcnow()
    with sessions() as session:
        session.add(Alert(device_id=DEVICE, kind="disk", detail="", raised_at=now))
        session.add(Alert(device_id=DEVICE, kind="disk", detail="", raised_at=now))
        with pytest.raises(IntegrityError):
            session.commit()
    with sessions.begin() as session:  # a cleared one does not count
        session.add(Alert(device_id=DEVICE, kind="disk", raised_at=now, cleared_at=now))
        session.add(Alert(device_id=DEVICE, kind="disk", detail="", raised_at=now))


def test_events_are_stored_once_by_id(sessions: sessionmaker[Session], settings: Settings) -> None:
    first, second = event(), event()
    flags = apply(
        sessions,
        settings,
        received(DEVICE, first),
        received(DEVICE, first),
        received(DEVICE, second),
    )
    assert flags == [False, True, False]
    assert apply(sessions, settings, received(DEVICE, first)) == [True]
    with sessions() as session:
        rows = session.scalars(select(EventRecord).order_by(EventRecord.at)).all()
        assert {r.id for r in rows} == {first.id, second.id}
        assert rows[0].kind == "call_started"
        assert rows[0].data == {"service": "caf"}
    d = device(sessions)
    assert d.state == "unknown"  # known from its events, no status yet
    assert d.last_seen is not None


def test_survey_answers_are_stored_once_by_id(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    answer = contract.SurveyAnswer(
        id=uuid.uuid4(),
        at=contract.utcnow(),
        questionnaire_version=1,
        answers={"satisfied": 5, "would_return": True},
    )
    assert apply(sessions, settings, received(DEVICE, answer)) == [False]
    assert apply(sessions, settings, received(DEVICE, answer)) == [True]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SurveyRecord)) == 1
        row = session.scalars(select(SurveyRecord)).one()
        assert row.answers == {"satisfied": 5, "would_return": True}


def test_survey_answers_keep_the_calls_service_and_the_counters_site(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    def answer(service: str | None) -> contract.SurveyAnswer:
        return contract.SurveyAnswer(
            id=uuid.uuid4(),
            at=contract.utcnow(),
            questionnaire_version=1,
            answers={"satisfaction": "4"},
            service=service,
        )

    first, second, third = answer("caf"), answer("msa"), answer(None)
    # Unknown counter: its site is not known yet when its answer arrives.
    assert apply(sessions, settings, received(DEVICE, first)) == [False]
    with sessions.begin() as session:  # enrolment (or an administrator) gives its site
        found = session.get(Device, DEVICE)
        assert found is not None
        found.site = "Monts de Châlus"
    assert apply(sessions, settings, received(DEVICE, second)) == [False]
    # A later batch reads the site stored on the counter; a redelivery is still stored once.
    assert apply(sessions, settings, received(DEVICE, third), received(DEVICE, second)) == [
        False,
        True,
    ]
    with sessions() as session:
        rows = {r.id: (r.site, r.service) for r in session.scalars(select(SurveyRecord))}
    assert rows == {
        first.id: ("", "caf"),
        second.id: ("Monts de Châlus", "msa"),
        third.id: ("Monts de Châlus", None),
    }


def test_command_ack_updates_only_the_counters_own_command(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    apply(sessions, settings, received(DEVICE, status()), received("other-01", status()))
    request_id = uuid.uuid4()
    with sessions.begin() as session:
        session.add(
            CommandRecord(
                request_id=request_id, device_id=DEVICE, name="reboot", sent_at=ago(seconds=5)
            )
        )
    forged = contract.CommandAck(request_id=request_id, at=contract.utcnow(), ok=False)
    apply(sessions, settings, received("other-01", forged))
    with sessions() as session:
        assert session.get(CommandRecord, request_id).acked_at is None  # type: ignore[union-attr]
    ack = contract.CommandAck(request_id=request_id, at=contract.utcnow(), ok=True, detail="ok")
    apply(sessions, settings, received(DEVICE, ack))
    with sessions() as session:
        command = session.get(CommandRecord, request_id)
        assert command is not None
        assert (command.ok, command.detail) == (True, "ok")
        assert command.acked_at is not None
