"""A counter whose clock is a year behind or a year ahead (issue 12, findings 13 and 16).

A Pi has no real-time clock: after a power cut it runs on its last saved time until NTP
answers. The server's receive time must drive state, staleness, alerts, retention and the
history's order; the counter's own time is kept as reported; an event or survey answer is
dated by the counter only when the counter says its clock was synchronised.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.metrics import Metrics
from fleet_server.models import (
    Alert,
    Device,
    EventRecord,
    StatusChange,
    SurveyRecord,
    TelemetrySample,
)
from fleet_server.mqtt import queries
from fleet_server.mqtt.health import run_checks
from fleet_server.settings import Settings
from guichet import contract
from tests.fleet_server.storage_support import (
    apply,
    make_settings,
    received,
    status,
    telemetry,
)

DEVICE = "rochechouart-01"
YEAR = timedelta(days=365)
SKEWS = pytest.mark.parametrize("skew", [-YEAR, YEAR], ids=["year-behind", "year-ahead"])


@pytest.fixture
def settings() -> Settings:
    return make_settings(
        silent_after_intervals=3, alert_offline_after_min=5, telemetry_retention_days=30
    )


def get(sessions: sessionmaker[Session]) -> Device:
    with sessions() as session:
        found = session.get(Device, DEVICE)
        assert found is not None
        return found


def history(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    """The counter's status history as the device page shows it: newest first."""
    with sessions() as session:
        return [(h.state, h.reason) for h in queries.status_history(session, DEVICE)]


@SKEWS
def test_state_and_history_follow_the_servers_clock(
    sessions: sessionmaker[Session], settings: Settings, skew: timedelta
) -> None:
    now = contract.utcnow()
    apply(sessions, settings, received(DEVICE, status(at=now + skew), received_at=now))
    device = get(sessions)
    assert device.state_since == now  # not "En ligne depuis 365 j"
    later = now + timedelta(minutes=1)
    shutdown = status("offline", at=later + skew, reason="shutdown")
    apply(sessions, settings, received(DEVICE, shutdown, received_at=later))
    assert get(sessions).state_since == later
    assert history(sessions) == [("offline", "shutdown"), ("online", "connected")]
    with sessions() as session:  # the counter's own time is kept as it reported it
        reported = session.scalars(select(StatusChange.reported_at).order_by(StatusChange.id))
        assert list(reported) == [now + skew, later + skew]


@SKEWS
def test_a_clean_shutdown_raises_no_alert_at_once(
    sessions: sessionmaker[Session], settings: Settings, skew: timedelta
) -> None:
    now = contract.utcnow()
    apply(sessions, settings, received(DEVICE, status(at=now + skew), received_at=now))
    shutdown = status("offline", at=now + skew, reason="shutdown")
    apply(sessions, settings, received(DEVICE, shutdown, received_at=now))
    run_checks(sessions, settings, Metrics(), now + timedelta(minutes=1))
    with sessions() as session:
        assert session.scalars(select(Alert)).all() == []
    run_checks(sessions, settings, Metrics(), now + timedelta(minutes=6))
    with sessions() as session:
        assert [a.kind for a in session.scalars(select(Alert))] == ["offline"]


@SKEWS
def test_telemetry_is_kept_for_the_retention_and_keeps_the_counter_online(
    sessions: sessionmaker[Session], settings: Settings, skew: timedelta
) -> None:
    now = contract.utcnow()
    apply(
        sessions,
        settings,
        received(DEVICE, status(at=now + skew, interval=30), received_at=now),
        received(DEVICE, telemetry(at=now + skew), received_at=now),
    )
    run_checks(sessions, settings, Metrics(), now + timedelta(seconds=10))
    with sessions() as session:
        samples = session.scalars(select(TelemetrySample.at)).all()
    assert samples == [now]  # not pruned at once: charts are not empty
    device = get(sessions)
    assert device.state == "online"
    assert device.clock_offset_s == pytest.approx(skew.total_seconds())


def _answer(at: datetime, synchronised: bool | None) -> contract.SurveyAnswer:
    return contract.SurveyAnswer(
        id=uuid.uuid4(),
        at=at,
        questionnaire_version=1,
        answers={"satisfaction": "4"},
        service="caf",
        clock_synchronised=synchronised,
    )


@SKEWS
def test_events_and_answers_from_an_unsynchronised_clock_are_dated_on_arrival(
    sessions: sessionmaker[Session], settings: Settings, skew: timedelta
) -> None:
    now = contract.utcnow()
    answer = _answer(now + skew, synchronised=False)
    event = contract.Event(
        id=uuid.uuid4(),
        at=now + skew,
        kind=contract.EventKind.CALL_ENDED,
        data={"service": "caf"},
        clock_synchronised=False,
    )
    apply(
        sessions,
        settings,
        received(DEVICE, answer, received_at=now),
        received(DEVICE, event, received_at=now),
    )
    with sessions() as session:
        row = session.scalars(select(SurveyRecord)).one()
        assert (row.at, row.reported_at) == (now, now + skew)  # counted in this month
        ev = session.scalars(select(EventRecord)).one()
        assert (ev.at, ev.reported_at) == (now, now + skew)


def test_a_synchronised_clock_dates_what_waited_in_the_outbox(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """An answer given yesterday, delivered today after an outage, counts yesterday."""
    now = contract.utcnow()
    yesterday = now - timedelta(days=1)
    apply(sessions, settings, received(DEVICE, _answer(yesterday, True), received_at=now))
    with sessions() as session:
        assert session.scalars(select(SurveyRecord.at)).one() == yesterday


@SKEWS
def test_a_fresh_session_replay_and_telemetry_bring_an_offline_counter_back(
    sessions: sessionmaker[Session], settings: Settings, skew: timedelta
) -> None:
    """After a server restart with a fresh MQTT session, the counter's retained "online"
    (stamped by its wrong clock) and its telemetry are news: it is not left offline."""
    yesterday = contract.utcnow() - timedelta(days=1)
    will = status("offline", at=yesterday, reason="last-will")
    apply(sessions, settings, received(DEVICE, will, received_at=yesterday))
    assert get(sessions).state == "offline"
    now = contract.utcnow()
    back = status(at=now + skew)
    apply(sessions, settings, received(DEVICE, back, received_at=now, retained=True))
    assert (get(sessions).state, get(sessions).state_since) == ("online", now)
    # The same retained status replayed again later is not news.
    with sessions.begin() as session:
        found = session.get(Device, DEVICE)
        assert found is not None
        found.state, found.state_since = "offline", now + timedelta(seconds=1)
    apply(sessions, settings, received(DEVICE, back, received_at=now, retained=True))
    assert get(sessions).state == "offline"
    # Telemetry arriving means it is connected now.
    apply(sessions, settings, received(DEVICE, telemetry(at=now + skew)))
    assert get(sessions).state == "online"


def test_a_last_will_and_a_reconnection_are_in_the_order_they_arrived(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Finding 16: the will is stamped on arrival, "online" was stamped by the counter's
    clock, a little behind: the history must still show the reconnection last."""
    t0 = contract.utcnow() - timedelta(minutes=10)
    apply(sessions, settings, received(DEVICE, status(at=t0), received_at=t0))
    will_at = t0 + timedelta(minutes=5)
    will = status("offline", at=t0, reason="last-will")  # armed at connection time
    apply(sessions, settings, received(DEVICE, will, received_at=will_at))
    back_at = will_at + timedelta(seconds=3)
    behind = back_at - timedelta(seconds=40)  # the counter's clock, 40 s slow
    apply(sessions, settings, received(DEVICE, status(at=behind), received_at=back_at))
    assert get(sessions).state == "online"
    assert history(sessions) == [
        ("online", "connected"),
        ("offline", "last-will"),
        ("online", "connected"),
    ]
