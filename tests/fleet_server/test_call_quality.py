"""Calls' quality on the server (issue 19, item 7), on both databases: the counter's summary
arriving over a real Mosquitto onto the call's row, bad figures dropped without losing the
event, a counter unable to mark another's call; the call log, the counter's page and the fleet
table's weekly flag on the real web app."""

from __future__ import annotations

import html
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.calls import quality as call_quality
from fleet_server.metrics import Metrics
from fleet_server.models import CallRecord, Device, EventRecord
from fleet_server.web.format import quality_line
from guichet import contract
from guichet.contract import EventKind, Kind
from guichet.quality import QUALITY_KEYS, read_quality
from tests.fleet_server.storage_support import make_settings, wait_for
from tests.fleet_server.test_ingest import count, publisher, running, send
from tests.support.mosquitto import Broker
from tests.support.webapp import WebApp, seed_devices

ME, OTHER = "pays-meteorite-01", "monts-de-chalus-02"
NOW = datetime.now(UTC).replace(microsecond=0)
FIXTURE = Path(__file__).parents[1] / "fixtures" / "contract" / "events" / "call_ended.json"
GOOD = {
    "measured_s": 300.0,
    "video_kbps_avg": 780,
    "video_kbps_min": 310,
    "loss_pct": 1.2,
    "rtt_ms": 128,
    "freezes": 2,
    "frozen_s": 1.4,
    "rung_steps": 1,
    "lowest_rung": "540p30",
    "audio_gaps_pct": 0.2,
}
LINE = (
    "Qualité\u00a0: 780 kbit/s en moyenne (min 310), pertes 1,2 %, aller-retour 128 ms, "
    "2 gels (1,4 s), 1 palier (jusqu'à 540p30), voix coupée 0,2 % du temps"
)


def add_devices(sessions: sessionmaker[Session], *ids: str) -> None:
    with sessions.begin() as session:
        for device_id in ids:
            session.add(Device(id=device_id, site="Pays de la Météorite", name=device_id))


def add_call(
    sessions: sessionmaker[Session],
    device_id: str,
    *,
    at: datetime = NOW,
    **quality: Any,
) -> uuid.UUID:
    call_id = uuid.uuid4()
    with sessions.begin() as session:
        session.add(
            CallRecord(
                id=call_id,
                device_id=device_id,
                site="Pays de la Météorite",
                service="caf",
                requested_at=at - timedelta(minutes=6),
                answered_at=at - timedelta(minutes=5, seconds=50),
                ended_at=at,
                end_reason="hangup_agent",
                **quality,
            )
        )
    return call_id


def ended(call_id: uuid.UUID, **data: contract.Scalar) -> contract.Event:
    return contract.Event(
        id=uuid.uuid4(),
        at=contract.utcnow(),
        kind=EventKind.CALL_ENDED,
        data={"call_id": str(call_id), "service": "caf", "duration_s": 300.0, **data},
    )


def the_call(sessions: sessionmaker[Session], call_id: uuid.UUID) -> CallRecord:
    with sessions() as session:
        call = session.get(CallRecord, call_id)
        assert call is not None
        return call


@contextmanager
def ingesting(
    broker: Broker, db_url: str, sessions: sessionmaker[Session]
) -> Iterator[mqtt.Client]:
    settings = make_settings(mqtt_url=broker.url, database_url=db_url)
    with running(settings, sessions, Metrics()), publisher(broker) as pub:
        yield pub


# --- over MQTT, into the database ------------------------------------------------------------


def test_the_summary_of_a_real_mqtt_event_lands_on_the_call(
    broker: Broker, db_url: str, sessions: sessionmaker[Session]
) -> None:
    add_devices(sessions, ME)
    measured, older = add_call(sessions, ME), add_call(sessions, ME)
    with ingesting(broker, db_url, sessions) as pub:
        send(pub, ME, Kind.EVENT, ended(measured, **GOOD))
        send(pub, ME, Kind.EVENT, ended(older))  # a counter from before issue 19
        wait_for(lambda: count(sessions, EventRecord) == 2)
    call = the_call(sessions, measured)
    assert (call.video_kbps_avg, call.video_kbps_min, call.loss_pct) == (780, 310, 1.2)
    assert (call.rtt_ms, call.freezes, call.frozen_s) == (128, 2, 1.4)
    assert (call.rung_steps, call.lowest_rung, call.audio_gaps_pct) == (1, "540p30", 0.2)
    assert call.measured_s == 300.0
    assert quality_line(call) == LINE
    untouched = the_call(sessions, older)
    assert untouched.measured_s is None
    assert quality_line(untouched) == ""


def test_bad_figures_are_dropped_and_said_and_the_event_is_kept(
    broker: Broker,
    db_url: str,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_devices(sessions, ME)
    call_id = add_call(sessions, ME)
    bad = {
        "loss_pct": 250.0,  # out of range
        "rtt_ms": -5,
        "freezes": "many",  # wrong type
        "rung_steps": 1.5,  # not whole
        "lowest_rung": "<script>alert(1)</script>",
        "frozen_s": True,  # a boolean is no number
    }
    nan_event = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "at": contract.utcnow().isoformat(),
        "kind": "call_ended",
        "data": {"call_id": str(call_id), "audio_gaps_pct": float("nan")},
    }
    caplog.set_level(logging.WARNING, logger="fleet_server")
    with ingesting(broker, db_url, sessions) as pub:
        send(pub, ME, Kind.EVENT, ended(call_id, video_kbps_avg=780, measured_s=60.0, **bad))
        # NaN is not JSON, but Python writes it: the event must survive it too.
        pub.publish(contract.topic(ME, Kind.EVENT), json.dumps(nan_event).encode(), qos=1)
        wait_for(lambda: count(sessions, EventRecord) == 2)
    call = the_call(sessions, call_id)
    assert (call.video_kbps_avg, call.measured_s) == (780, 60.0)  # the good ones kept
    assert (call.loss_pct, call.rtt_ms, call.freezes, call.rung_steps) == (None, None, None, None)
    assert (call.lowest_rung, call.frozen_s, call.audio_gaps_pct) == (None, None, None)
    said = " ".join(r.getMessage() for r in caplog.records)
    for key in (*bad, "audio_gaps_pct"):
        assert key in said
    with sessions() as session:
        stored = session.scalars(select(EventRecord.data)).all()
    assert any(d.get("loss_pct") == 250.0 for d in stored)  # the event as it came
    assert any("audio_gaps_pct" in d and d["audio_gaps_pct"] is None for d in stored)


def test_a_counter_cannot_put_figures_on_another_counter_s_call(
    broker: Broker,
    db_url: str,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_devices(sessions, ME, OTHER)
    theirs = add_call(sessions, OTHER)
    caplog.set_level(logging.WARNING, logger="fleet_server")
    with ingesting(broker, db_url, sessions) as pub:
        # ME's credentials, OTHER's call id: a compromised counter smearing a neighbour.
        send(pub, ME, Kind.EVENT, ended(theirs, **(GOOD | {"video_kbps_avg": 1, "loss_pct": 99})))
        send(pub, ME, Kind.EVENT, ended(uuid.uuid4(), **GOOD))  # a call nobody made
        wait_for(lambda: count(sessions, EventRecord) == 2)
    call = the_call(sessions, theirs)
    assert (call.video_kbps_avg, call.loss_pct, call.measured_s) == (None, None, None)
    warnings = [r for r in caplog.records if "not this counter's" in r.getMessage()]
    assert len(warnings) == 2
    assert {getattr(r, "device_id", None) for r in warnings} == {ME}


def test_the_golden_call_ended_event_reads_whole() -> None:
    raw = FIXTURE.read_bytes()
    message = contract.decode(Kind.EVENT, raw)
    assert json.loads(contract.encode(message)) == json.loads(raw)
    assert isinstance(message, contract.Event)
    reading = read_quality(message.data)
    assert reading.rejected == {}
    assert set(reading.values) == set(QUALITY_KEYS)


# --- the weekly verdict ------------------------------------------------------------------------


def week(**figures: Any) -> call_quality.WeekQuality:
    values: dict[str, Any] = {
        "calls": 3,
        "measured_s": 900.0,
        "frozen_pct": 0.5,
        "loss_pct": 0.5,
        "video_kbps": 800.0,
        "audio_gaps_pct": 0.1,
    }
    return call_quality.WeekQuality(**(values | figures))


@pytest.mark.parametrize(
    ("figures", "weaknesses"),
    [
        ({}, []),
        ({"frozen_pct": 2.5}, ["frozen"]),
        ({"loss_pct": 5.1, "video_kbps": 290.0}, ["loss", "bitrate"]),
        ({"audio_gaps_pct": 1.5}, ["audio"]),
        ({"frozen_pct": 2.0, "loss_pct": 5.0, "video_kbps": 300.0, "audio_gaps_pct": 1.0}, []),
        ({"frozen_pct": 50.0, "measured_s": 59.0}, []),  # too little measured to judge
        ({"loss_pct": None, "video_kbps": None}, []),  # not measured is not poor
    ],
)
def test_what_makes_a_poor_line(figures: dict[str, Any], weaknesses: list[str]) -> None:
    assert week(**figures).weaknesses == weaknesses


# --- pages ---------------------------------------------------------------------------------------


def test_call_log_and_counter_page_say_each_call_s_quality(web: WebApp) -> None:
    add_devices(web.sessions, ME)
    add_call(web.sessions, ME, **GOOD)
    add_call(web.sessions, ME, at=NOW - timedelta(hours=1))  # an older counter's: no line
    log = html.unescape(web.client.get("/calls").text)
    assert LINE in log
    assert log.count("Qualité\u00a0:") == 1
    page = html.unescape(web.client.get(f"/devices/{ME}").text)
    assert LINE in page
    assert "Sur les 7 derniers jours (1 appel mesuré)\u00a0: " in page
    assert "Ligne faible cette semaine" not in page


def poor_rows(page: str) -> set[str]:
    rows = re.findall(r'<tr data-device-id="([^"]+)".*?</tr>', page, re.S)
    flagged = re.findall(r'<tr data-device-id="([^"]+)"(?:(?!</tr>).)*line-flag', page, re.S)
    assert rows
    return set(flagged)


def test_the_fleet_table_flags_counters_whose_line_was_poor_this_week(web: WebApp) -> None:
    poor, good, last_week, unmeasured = "poor-01", "good-02", "last-week-03", "old-04"
    add_devices(web.sessions, poor, good, last_week, unmeasured)
    frozen = GOOD | {"frozen_s": 15.0, "video_kbps_avg": 240}  # 5 % frozen, 240 kbit/s
    add_call(web.sessions, poor, **frozen)
    add_call(web.sessions, poor, at=NOW - timedelta(days=2), **GOOD)
    add_call(web.sessions, good, **GOOD)
    add_call(web.sessions, last_week, at=NOW - timedelta(days=8), **frozen)
    add_call(web.sessions, unmeasured)
    for url in ("/", "/fleet/rows"):
        page = web.client.get(url).text
        assert poor_rows(page) == {poor}, url
    text = html.unescape(web.client.get("/").text)
    assert f'href="/devices/{poor}#appels">Ligne faible cette semaine</a>' in text
    # Why, weighted by call time: 16.4 s frozen of 600 s; 510 kbit/s on average is enough.
    why = (
        "Sur les 7 derniers jours (2 appels mesurés)\u00a0: "
        "image de l'agent gelée 2,7 % du temps (seuil\u00a0: plus de 2 %)."
    )
    assert f'title="{why}"' in text
    counter = html.unescape(web.client.get(f"/devices/{poor}").text)
    assert f"Ligne faible cette semaine.</strong> {why}" in counter


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL every engine (the app's own included) runs meanwhile."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    sa_event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa_event.remove(Engine, "before_cursor_execute", note)


def test_the_flag_costs_one_query_whatever_the_page_holds(web: WebApp) -> None:
    devices = seed_devices(web.sessions, 50)
    with web.sessions.begin() as session:
        session.execute(
            insert(CallRecord),
            [
                {
                    "id": uuid.uuid4(),
                    "device_id": d["id"],
                    "site": d["site"],
                    "service": "caf",
                    "requested_at": NOW - timedelta(hours=i),
                    "measured_s": 120.0,
                    "frozen_s": 10.0 if i % 2 else 0.0,
                }
                for i, d in enumerate(devices)
            ],
        )
    with statements() as seen:
        page = web.client.get("/").text
    on_calls = [s for s in seen if "FROM calls" in s]
    assert len(on_calls) == 1
    assert len(poor_rows(page)) > 5
