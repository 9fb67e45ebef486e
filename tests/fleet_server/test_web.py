"""The dashboard's pages on the real app: fleet table (filters, keyset pages, live fragment
at 10,000 counters), a counter's page and the alerts page."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from fleet_server.models import Alert, Device, EventRecord, StatusChange, TelemetrySample
from tests.support.webapp import SITES, WebApp, seed_devices

ROW_RE = re.compile(r'data-device-id="([^"]+)" data-state="([^"]+)"')
NEXT_RE = re.compile(r'href="([^"]+)" rel="next"')
PREV_RE = re.compile(r'href="([^"]+)" rel="prev"')
FLEET_SIZE = 10_000


def rows(page: str) -> list[tuple[str, str]]:
    return ROW_RE.findall(page)


def link(pattern: re.Pattern[str], page: str) -> str | None:
    match = pattern.search(page)
    return html.unescape(match.group(1)) if match else None


@pytest.fixture
def fleet(web: WebApp) -> list[dict[str, Any]]:
    return seed_devices(web.sessions, FLEET_SIZE)


def expected(devices: list[dict[str, Any]], **where: Any) -> list[str]:
    chosen = [d for d in devices if all(d[k] == v for k, v in where.items())]
    return [d["id"] for d in sorted(chosen, key=lambda d: (d["site"], d["id"]))]


def test_fleet_table_filters_at_ten_thousand_counters(
    web: WebApp, fleet: list[dict[str, Any]]
) -> None:
    page = web.client.get("/").text
    first = [d for d, _ in rows(page)]
    assert first == expected(fleet)[:50]
    assert f"sur {FLEET_SIZE} guichets" in page

    offline = web.client.get("/", params={"state": "offline"}).text
    assert {s for _, s in rows(offline)} == {"offline"}
    assert f"sur {len(expected(fleet, state='offline'))} guichets" in offline

    site = web.client.get("/", params={"site": SITES[2], "state": "silent"}).text
    assert [d for d, _ in rows(site)] == expected(fleet, site=SITES[2], state="silent")[:50]

    alerts = web.client.get("/", params={"alerts": "1"}).text
    assert [d for d, _ in rows(alerts)] == expected(fleet, open_alerts=1)[:50]

    search = web.client.get("/", params={"q": "GUICHET-0123"}).text  # case-insensitive
    assert sorted(d for d, _ in rows(search)) == [f"guichet-0123{i}" for i in range(10)]
    for wildcard in ("%", "_"):  # LIKE wildcards are matched literally
        assert rows(web.client.get("/", params={"q": wildcard}).text) == []


def test_fleet_pages_by_keyset_forward_and_back(web: WebApp, fleet: list[dict[str, Any]]) -> None:
    want = expected(fleet, site=SITES[1])
    seen: list[str] = []
    pages: list[str] = []
    url: str | None = "/?site=" + SITES[1]
    while url is not None:
        page = web.client.get(url).text
        pages.append(url)
        seen.extend(d for d, _ in rows(page))
        url = link(NEXT_RE, page)
    assert seen == want  # every counter of the site once, in order, over 50 pages
    assert len(pages) == -(-len(want) // 50)

    third = web.client.get(pages[2]).text
    back = web.client.get(link(PREV_RE, third) or "").text
    assert [d for d, _ in rows(back)] == want[50:100]
    assert link(PREV_RE, web.client.get(pages[0]).text) is None


def test_bad_cursor_shows_the_first_page(web: WebApp, fleet: list[dict[str, Any]]) -> None:
    page = web.client.get("/", params={"after": "not-a-cursor"})
    assert page.status_code == 200
    assert [d for d, _ in rows(page.text)] == expected(fleet)[:50]


def test_live_fragment_follows_the_database(web: WebApp) -> None:
    seed_devices(web.sessions, 7)
    page = web.client.get("/").text
    assert 'data-refresh-url="/fleet/rows?"' in page
    assert '<script src="/static/fleet.js"' in page
    with web.sessions.begin() as session:
        session.execute(update(Device).where(Device.id == "guichet-00000").values(state="offline"))
    fragment = web.client.get("/fleet/rows")
    assert fragment.headers["cache-control"] == "no-store"
    assert ("guichet-00000", "offline") in rows(fragment.text)
    assert 'id="fleet-body" data-swap' in fragment.text
    assert 'id="fleet-summary"' in fragment.text


def test_static_assets_and_security_headers(web: WebApp) -> None:
    script = web.client.get("/static/fleet.js")
    assert script.status_code == 200
    assert "data-swap" in script.text
    assert web.client.get("/static/app.css").status_code == 200
    csp = web.client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp


def _seed_one_counter(web: WebApp) -> str:
    now = datetime.now(UTC)
    seed_devices(web.sessions, 1)
    device_id = "guichet-00000"
    samples = [
        {
            "device_id": device_id,
            "at": now - timedelta(minutes=5 * i),
            "cpu_temperature_c": 50.0 + i % 7,
            "load1": 0.2 + (i % 5) / 10,
            "memory_used_pct": 40.0,
            "disk_used_pct": 30.0,
        }
        for i in range(288)
    ]
    events = [
        {
            "id": uuid.uuid4(),
            "device_id": device_id,
            "at": now - timedelta(minutes=i),
            "received_at": now,
            "kind": "call_ended" if i else "peripheral_unplugged",
            "data": {"peripheral": "scanner"} if i == 0 else {},
        }
        for i in range(30)
    ]
    alerts = [
        Alert(device_id=device_id, kind="printer", detail="media-empty", raised_at=now),
        Alert(
            device_id=device_id,
            kind="offline",
            detail="hors ligne",
            raised_at=now - timedelta(hours=3),
            cleared_at=now - timedelta(hours=2),
        ),
    ]
    with web.sessions.begin() as session:
        session.execute(insert(TelemetrySample), samples)
        session.execute(insert(EventRecord), events)
        session.add_all(alerts)
        session.add(StatusChange(device_id=device_id, at=now, state="online", reason="connected"))
    return device_id


def test_counter_page_shows_charts_history_events_and_alerts(web: WebApp) -> None:
    device_id = _seed_one_counter(web)
    page = web.client.get(f"/devices/{device_id}")
    assert page.status_code == 200
    text = page.text
    assert text.count("<polyline") == 2  # temperature and load
    assert "Température du processeur" in text
    assert "Imprimante en erreur" in text  # the open alert
    assert "Hors ligne" in text  # the cleared one, in past alerts
    assert "Périphérique débranché" in text  # newest event first
    assert text.count("Appel terminé") == 24  # 25 events per page
    assert "Plus anciens" in text
    second = web.client.get(f"/devices/{device_id}", params={"events": 2, "range": "7d"}).text
    assert second.count("Appel terminé") == 5
    assert "Historique sur 7 jours" in second


def test_counter_without_telemetry_and_unknown_counter(web: WebApp) -> None:
    with web.sessions.begin() as session:
        session.add(Device(id="guichet-neuf", site="", name="", state="unknown"))
    page = web.client.get("/devices/guichet-neuf")
    assert page.status_code == 200
    assert "Pas de mesure sur cette période." in page.text
    missing = web.client.get("/devices/nope")
    assert missing.status_code == 404
    assert "Guichet inconnu" in missing.text
    bad = web.client.get("/devices/guichet-neuf", params={"range": "1y"})
    assert bad.status_code == 422
    assert "ne sont pas valides" in bad.text
    assert web.client.get("/nulle-part").text.count("Page introuvable.") == 1


def test_alerts_page_lists_open_alerts_and_cleared_ones_apart(web: WebApp) -> None:
    device_id = _seed_one_counter(web)
    page = web.client.get("/alerts").text
    assert 'id="open-alerts"' in page
    assert "media-empty" in page
    assert "hors ligne" not in page  # the cleared one is on the other list
    assert f'href="/devices/{device_id}#alertes"' in page
    cleared = web.client.get("/alerts", params={"list": "cleared"}).text
    assert 'id="cleared-alerts"' in cleared
    assert "hors ligne" in cleared
    assert "media-empty" not in cleared


@pytest.mark.parametrize("offset_s", [-365 * 86_400.0, 365 * 86_400.0], ids=["behind", "ahead"])
def test_a_counter_with_a_wrong_clock_is_flagged(web: WebApp, offset_s: float) -> None:
    """Issue 12, finding 13: the dashboard flags a counter whose clock is not synchronised;
    finding 3: what the counter says of its site is shown as reported, beside the real one."""
    with web.sessions.begin() as session:
        session.add(
            Device(
                id="guichet-horloge",
                site=SITES[0],
                name="Mairie",
                state="online",
                state_since=datetime.now(UTC),
                clock_synchronised=False,
                clock_offset_s=offset_s,
                reported_site=SITES[1],
            )
        )
        session.add(Device(id="guichet-ok", site=SITES[0], state="online", clock_synchronised=True))
    fleet_page = web.client.get("/").text
    assert fleet_page.count("Horloge non synchronisée") == 1
    page = web.client.get("/devices/guichet-horloge").text
    assert "non synchronisée" in page
    assert ("en retard" if offset_s < 0 else "en avance") in page
    assert f'Site déclaré par le guichet</dt><dd class="reported">{html.escape(SITES[1])}' in page
