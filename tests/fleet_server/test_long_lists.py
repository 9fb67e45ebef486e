"""The lists that grow with the fleet or with time, on the real app and both databases: the
alerts page at 10,000 open alerts, the call log and the audit log — filters, keyset pages
forwards and back, a cursor not made here, and who sees what (issue 17, point 8)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from fleet_server.models import Alert, AuditEntry, CallRecord
from fleet_server.security import auth
from guichet.schedule import PARIS
from tests.support.webapp import PASSWORD, SITES, WebApp, seed_devices

NEXT_RE = re.compile(r'href="([^"]+)" rel="next"')
PREV_RE = re.compile(r'href="([^"]+)" rel="prev"')
ALERT_RE = re.compile(r'data-alert-id="(\d+)" data-device-id="([^"]+)" data-kind="([^"]+)"')
CALL_RE = re.compile(r'data-call-id="([^"]+)" data-end-reason="([^"]*)" data-site="([^"]*)"')
ENTRY_RE = re.compile(r'data-action="([^"]+)" data-entry-id="(\d+)"')
KINDS = ("offline", "printer", "disk", "temperature")
FLEET = 10_000
NOW = datetime.now(UTC).replace(microsecond=0)


def link(pattern: re.Pattern[str], page: str) -> str | None:
    match = pattern.search(page)
    return html.unescape(match.group(1)) if match else None


def walk(web: WebApp, url: str, row: re.Pattern[str]) -> tuple[list[Any], list[str]]:
    """Every row of a list, following its "next" links from ``url``; and the pages' URLs."""
    rows: list[Any] = []
    urls: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        page = web.client.get(next_url)
        assert page.status_code == 200, next_url
        urls.append(next_url)
        rows.extend(row.findall(page.text))
        next_url = link(NEXT_RE, page.text)
    return rows, urls


# --- alerts -------------------------------------------------------------------------------


def _seed_alerts(web: WebApp) -> list[dict[str, Any]]:
    """One open alert per counter of a 10,000-counter fleet, raised in bursts of the same
    second (ties), and 120 cleared ones; returns the open ones."""
    devices = seed_devices(web.sessions, FLEET)
    open_alerts = [
        {
            "device_id": d["id"],
            "kind": KINDS[i // 4 % len(KINDS)],  # independent of the site (i % 4)
            "detail": f"détail {i}",
            "raised_at": NOW - timedelta(seconds=i // 3),
        }
        for i, d in enumerate(devices)
    ]
    cleared = [
        {
            "device_id": devices[i]["id"],
            "kind": "scanner",
            "detail": "vu puis réglé",
            "raised_at": NOW - timedelta(days=2, minutes=i),
            "cleared_at": NOW - timedelta(days=1, minutes=i),
        }
        for i in range(120)
    ]
    with web.sessions.begin() as session:
        for start in range(0, FLEET, 2000):
            session.execute(insert(Alert), open_alerts[start : start + 2000])
        session.execute(insert(Alert), cleared)
    for i, alert in enumerate(open_alerts):
        alert["site"], alert["n"] = devices[i]["site"], i  # ids follow the insertion order
    return open_alerts


def test_alerts_page_at_ten_thousand_open_alerts(web: WebApp) -> None:
    _seed_alerts(web)
    first = web.client.get("/alerts")
    assert first.status_code == 200
    assert len(first.content) < 100_000  # one page, not 4 MB of every open alert
    rows = ALERT_RE.findall(first.text)
    assert len(rows) == 50
    assert {kind for _, _, kind in rows} <= set(KINDS)  # no cleared one among them
    assert "50 affichées sur 10000 alertes" in first.text
    assert 'Alertes ouvertes <span class="count">10000</span>' in first.text

    printer = web.client.get("/alerts", params={"kind": "printer"}).text
    assert {kind for _, _, kind in ALERT_RE.findall(printer)} == {"printer"}
    assert "sur 2500 alertes" in printer
    device = web.client.get("/alerts", params={"device": "guichet-00042"}).text
    assert [d for _, d, _ in ALERT_RE.findall(device)] == ["guichet-00042"]
    search = web.client.get("/alerts", params={"q": "GUICHET-0999"}).text  # case-insensitive
    assert sorted(d for _, d, _ in ALERT_RE.findall(search)) == [
        f"guichet-0999{i}" for i in range(10)
    ]
    unknown = web.client.get("/alerts", params={"kind": "nope"}).text  # ignored, not an error
    assert "sur 10000 alertes" in unknown


def test_alerts_of_a_site_page_forwards_and_back(web: WebApp) -> None:
    seeded = _seed_alerts(web)
    site = SITES[3]
    want = sorted(
        (a for a in seeded if a["site"] == site and a["kind"] == "offline"),
        key=lambda a: (a["raised_at"], a["n"]),
        reverse=True,
    )
    assert len(want) > 100
    rows, urls = walk(web, "/alerts?" + f"site={site}&kind=offline", ALERT_RE)
    assert [d for _, d, _ in rows] == [a["device_id"] for a in want]
    ids = [int(i) for i, _, _ in rows]
    assert len(set(ids)) == len(ids)
    assert len(urls) == -(-len(want) // 50)
    third = web.client.get(urls[2]).text
    back = web.client.get(link(PREV_RE, third) or "").text
    assert [d for _, d, _ in ALERT_RE.findall(back)] == [a["device_id"] for a in want[50:100]]
    assert "kind=offline" in (link(NEXT_RE, back) or "")  # the filters stay in the links


def test_cleared_alerts_are_a_list_of_their_own(web: WebApp) -> None:
    _seed_alerts(web)
    rows, urls = walk(web, "/alerts?list=cleared", ALERT_RE)
    assert len(rows) == 120
    assert {kind for _, _, kind in rows} == {"scanner"}
    assert [d for _, d, _ in rows] == [f"guichet-{i:05d}" for i in range(120)]  # last cleared first
    page = web.client.get(urls[1]).text
    assert "50 alertes affichées" in page  # not counted: the list grows with time
    assert 'id="cleared-alerts"' in page
    filtered = web.client.get("/alerts", params={"list": "cleared", "kind": "scanner"}).text
    assert 'href="/alerts?list=cleared">Effacer</a>' in filtered  # stays on the cleared list
    bad = web.client.get("/alerts", params={"list": "cleared", "after": "pas-un-curseur"})
    assert bad.status_code == 200
    assert ALERT_RE.findall(bad.text)[:3] == rows[:3]  # the first page


# --- call log -----------------------------------------------------------------------------

OUTCOMES = ("hangup_agent", "missed", "cancelled", None)


def _seed_calls(web: WebApp, count: int = 420) -> list[dict[str, Any]]:
    devices = seed_devices(web.sessions, 40)
    calls = []
    for n in range(count):
        device = devices[n // 4 % len(devices)]  # its site independent of the outcome
        outcome = OUTCOMES[n % len(OUTCOMES)]
        requested = NOW - timedelta(minutes=10 * (n // 2))  # pairs requested together
        calls.append(
            {
                "id": uuid.uuid4(),
                "device_id": device["id"],
                "site": device["site"],
                "service": ("caf", "msa", "caf")[n % 3],
                "requested_at": requested,
                "answered_at": requested + timedelta(seconds=40) if outcome else None,
                "ended_at": requested + timedelta(minutes=5) if outcome else None,
                "end_reason": outcome,
            }
        )
    with web.sessions.begin() as session:
        session.execute(insert(CallRecord), calls)
    return calls


def _newest_first(calls: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(calls, key=lambda c: (c["requested_at"], c["id"]), reverse=True)
    return [str(c["id"]) for c in ordered]


def test_call_log_filters_and_pages(web: WebApp) -> None:
    calls = _seed_calls(web)
    rows, urls = walk(web, "/calls", CALL_RE)
    assert [i for i, _, _ in rows] == _newest_first(calls)  # every service, every call once
    assert len(urls) == 9
    first = web.client.get("/calls").text
    assert "50 appels affichés" in first
    assert "<th>Service</th>" in first  # every service: the column says which

    site = SITES[1]
    caf_missed_at_site = [
        c
        for c in calls
        if c["service"] == "caf" and c["end_reason"] == "missed" and c["site"] == site
    ]
    assert caf_missed_at_site
    url = f"/calls?service=caf&outcome=missed&site={site}"
    rows, _ = walk(web, url, CALL_RE)
    assert [i for i, _, _ in rows] == _newest_first(caf_missed_at_site)
    assert {(r, s) for _, r, s in rows} == {("missed", site)}

    ongoing, _ = walk(web, "/calls?outcome=ongoing", CALL_RE)
    assert [i for i, _, _ in ongoing] == _newest_first([c for c in calls if not c["end_reason"]])
    device, _ = walk(web, "/calls?device=guichet-00007", CALL_RE)
    assert [i for i, _, _ in device] == _newest_first(
        [c for c in calls if c["device_id"] == "guichet-00007"]
    )

    day = (NOW - timedelta(days=1)).astimezone(PARIS).date()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    until, _ = walk(web, f"/calls?until={day.isoformat()}", CALL_RE)
    assert [i for i, _, _ in until] == _newest_first([c for c in calls if c["requested_at"] < end])


def test_an_agent_s_call_log_is_their_service_s(web: WebApp) -> None:
    calls = _seed_calls(web, 120)
    with web.sessions.begin() as session:
        auth.upsert_user(session, "agent-msa", PASSWORD, role="agent", service="msa")
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    assert web.login("agent-msa").status_code == 303
    rows, _ = walk(web, "/calls", CALL_RE)
    assert [i for i, _, _ in rows] == _newest_first([c for c in calls if c["service"] == "msa"])
    page = web.client.get("/calls").text
    assert 'name="service"' not in page  # no choice of service
    assert "<th>Service</th>" not in page
    missed, _ = walk(web, "/calls?outcome=missed", CALL_RE)
    assert {r for _, r, _ in missed} == {"missed"}
    assert web.client.get("/calls", params={"service": "caf"}).status_code == 403


# --- audit log ----------------------------------------------------------------------------


def test_audit_log_filters_and_pages(web: WebApp) -> None:
    actions = ("device.service", "command.send", "user.update")
    entries = [
        {
            "at": NOW - timedelta(hours=n // 4),  # four at a time
            "actor": ("admin", "technicien")[n % 2],
            "action": actions[n % 3],
            "target": f"guichet-{n % 25:05d}",
            "detail": {},
        }
        for n in range(260)
    ]
    with web.sessions.begin() as session:
        session.execute(insert(AuditEntry), entries)
    rows, urls = walk(web, "/admin/audit", ENTRY_RE)
    assert len(rows) == 260
    assert len({i for _, i in rows}) == 260
    assert len(urls) == 6
    assert "50 actes affichés" in web.client.get("/admin/audit").text

    commands, _ = walk(web, "/admin/audit?action=command.send&actor=technicien", ENTRY_RE)
    want = [e for e in entries if e["action"] == "command.send" and e["actor"] == "technicien"]
    assert len(commands) == len(want)
    assert {a for a, _ in commands} == {"command.send"}
    target = web.client.get("/admin/audit", params={"target": "guichet-00003"}).text
    assert target.count("<td>guichet-00003</td>") == len(
        [e for e in entries if e["target"] == "guichet-00003"]
    )
    day = (NOW - timedelta(days=2)).astimezone(PARIS).date()  # a Paris day, as the page shows
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    until, _ = walk(web, f"/admin/audit?until={day.isoformat()}", ENTRY_RE)
    assert len(until) == len([e for e in entries if e["at"] < end])


def test_a_counter_s_page_links_to_its_whole_history(web: WebApp) -> None:
    """Its page shows its latest 50 calls and cleared alerts; the lists have them all."""
    calls = _seed_calls(web, 160)
    device_id = "guichet-00003"
    with web.sessions.begin() as session:
        for i in range(60):
            raised = NOW - timedelta(days=1, minutes=i)
            session.add(Alert(device_id=device_id, kind="disk", raised_at=raised, cleared_at=NOW))
    page = web.client.get(f"/devices/{device_id}").text
    to_calls = f'href="/calls?device={device_id}"'
    to_alerts = f'href="/alerts?list=cleared&amp;device={device_id}"'
    assert to_calls in page
    assert to_alerts in page
    rows, _ = walk(web, f"/calls?device={device_id}", CALL_RE)
    assert [i for i, _, _ in rows] == _newest_first(
        [c for c in calls if c["device_id"] == device_id]
    )
    alerts, _ = walk(web, f"/alerts?list=cleared&device={device_id}", ALERT_RE)
    assert len(alerts) == 60
