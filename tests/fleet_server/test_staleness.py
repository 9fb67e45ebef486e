"""A counter that is not online shows its measures as the last known ones — greyed, with their
age — in the fleet table and on its page, never as its state now (issue 17, point 9)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from fleet_server.models import Device
from fleet_server.web.format import last_known
from tests.support.webapp import WebApp, seed_devices

NOW = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", ["offline", "silent", "unknown"])
def test_measures_of_a_counter_not_online_are_last_known(state: str) -> None:
    three_hours_ago = NOW - timedelta(hours=3)
    assert last_known(state, three_hours_ago, NOW) == "dernière valeur connue il y a 3 h 00"
    assert last_known("online", three_hours_ago, NOW) == ""
    assert last_known(state, None, NOW) == ""  # nothing ever measured: nothing to grey


def _row(page: str, device_id: str) -> str:
    match = re.search(rf'<tr data-device-id="{device_id}".*?</tr>', page, re.S)
    assert match, device_id
    return html.unescape(match.group(0))


def test_fleet_table_greys_an_offline_counter_s_measures(web: WebApp) -> None:
    seed_devices(web.sessions, 7)  # guichet-00003 is offline, the others mostly online
    with web.sessions.begin() as session:
        session.execute(
            update(Device)
            .where(Device.id == "guichet-00003")
            .values(last_telemetry_at=datetime.now(UTC) - timedelta(hours=2, minutes=5))
        )
    page = web.client.get("/").text
    offline = _row(page, "guichet-00003")
    assert "row-stale" in offline
    assert offline.count('class="health health-ok stale"') == 3  # camera, printer, scanner
    assert offline.count("(dernière valeur connue il y a 2 h 05)") == 5  # with the 2 numbers
    assert 'title="Dernière valeur connue il y a 2 h 05"' in offline
    assert '<div class="sub stale-note" aria-hidden="true">valeurs reçues il y a 2 h 05' in offline
    online = _row(page, "guichet-00001")
    assert "stale" not in online
    assert online.count('class="health health-ok"') == 3


def test_counter_page_says_its_measures_are_last_known(web: WebApp) -> None:
    seed_devices(web.sessions, 4)
    peripherals = {p: {"health": "ok"} for p in ("camera", "printer", "scanner", "button")}
    with web.sessions.begin() as session:
        session.execute(
            update(Device)
            .where(Device.id.in_(["guichet-00000", "guichet-00003"]))
            .values(last_telemetry={"peripherals": peripherals, "memory_used_pct": 41.0})
        )
        session.execute(
            update(Device)
            .where(Device.id == "guichet-00003")
            .values(last_telemetry_at=datetime.now(UTC) - timedelta(minutes=40))
        )
    page = web.client.get("/devices/guichet-00003").text
    note = '<p class="stale-note">Dernière valeur connue il y a 40 min'
    assert page.count(note) == 2  # over the measures and over the peripherals
    assert "le guichet n'est pas en ligne" in page
    assert '<dl class="facts stale">' in page
    assert page.count('class="health health-ok stale"') == 4
    fresh = web.client.get("/devices/guichet-00000").text
    assert "Dernière valeur connue" not in fresh
    assert '<dl class="facts">' in fresh
    assert fresh.count('class="health health-ok"') == 4
