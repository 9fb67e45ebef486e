"""Every page of the fleet server audited by axe-core in real headless Chromium, as each role
(issue 15, item 5, "Consoles at RGAA AA"; docs/accessibility.md).

The pages are enumerated from the app's own routes: every GET route is either a page, with the
address the audit visits, or listed in ``NOT_PAGES`` with the reason — a new route that is
neither fails the test. Each role (administrator, auditor, agent, reception) and an anonymous
visitor then visit every page with a database seeded as the demo's (four counters, alerts,
calls, the timetable, six weeks of statistics, an appointment, an enrolment request); whatever
the server answers — the page, a redirect to the role's home or the French « Accès refusé » —
is audited, and any critical or serious violation fails, listed page by page.

axe-core is the copy bundled in the ``axe-playwright-python`` package (installed with the
``dev`` extra), injected through the DevTools protocol: nothing is fetched at run time and the
app's Content-Security-Policy is untouched. The console during a call is audited by
``tests/netns/test_keyboard_call.py``, which has a real counter on the line.
"""

from __future__ import annotations

import gzip
import importlib.resources
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from fleet_server.models import (
    Alert,
    Appointment,
    AuditEntry,
    CallRecord,
    CommandRecord,
    CounterUpdateRecord,
    Device,
    EventRecord,
    Release,
    RolloutRecord,
    StatusChange,
    SupportUpload,
    User,
)
from fleet_server.security import audit, enrolment
from fleet_server.web.accessibility import AUDITED_PAGES, AXE_CORE_VERSION
from fleet_server.web.format import ACCESSIBILITY_COMPLIANCE
from guichet.schedule import PARIS
from guichet_cli.demo_scheme import COUNTERS, seed_schedules
from guichet_cli.demo_stats import seed_statistics
from tests.fleet_server.test_routes_access import app_routes
from tests.support.browser import async_chromium
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import PASSWORD, device_row

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The impacts that fail the audit (RGAA AA's automated part); minor and moderate are reported.
FAILING_IMPACTS = frozenset({"critical", "serious"})
DEVICE = COUNTERS[2]  # Monts de Châlus: its reception user, its counter's page
SITE = DEVICE.site
LOGS_ID = uuid.UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")  # its logs, fetched and received

# Every GET page of the app: its route → the address the audit visits.
PAGES: dict[str, tuple[str, ...]] = {
    "/": ("/",),
    "/login": ("/login",),
    "/login/totp": (),  # reached only half-way through a login: ``_audit_totp_login``
    "/account/totp": ("/account/totp",),
    "/alerts": ("/alerts",),
    "/calls": ("/calls",),
    "/statistiques": ("/statistiques",),
    "/devices/{device_id}": (f"/devices/{DEVICE.device_id}",),
    "/agent": ("/agent", "/agent?service=caf"),
    "/reception": ("/reception",),
    "/admin/services": ("/admin/services",),
    "/admin/schedules": ("/admin/schedules",),
    "/admin/questionnaire": ("/admin/questionnaire",),
    "/admin/enrolment": ("/admin/enrolment",),
    "/admin/users": ("/admin/users",),
    "/admin/audit": ("/admin/audit",),
    "/admin/notifications": ("/admin/notifications",),
    "/admin/versions": ("/admin/versions",),
    "/admin/rollouts/{rollout_id}": ("/admin/rollouts/1",),
    "/devices/{device_id}/logs/{logs_id}": (f"/devices/{DEVICE.device_id}/logs/{LOGS_ID}",),
    "/api/v1/docs": ("/api/v1/docs",),
    "/accessibilite": ("/accessibilite",),
}
# Every other GET route, and why it is not a page a person reads.
NOT_PAGES: dict[str, str] = {
    "/fleet/rows": "the fleet table's rows, swapped into / by fleet.js (audited there)",
    "/admin/audit.csv": "a CSV download",
    "/statistiques.csv": "a CSV download",
    "/ical/{token}.ics": "an iCalendar feed for the agent's calendar application",
    "/api/v1/devices": "JSON API",
    "/api/v1/devices/{device_id}": "JSON API",
    "/api/v1/alerts": "JSON API",
    "/api/v1/notifications/targets": "JSON API",
    "/api/v1/notifications/deliveries": "JSON API",
    "/api/v1/alert-thresholds": "JSON API",
    "/api/v1/openapi.json": "JSON API (its reference page is /api/v1/docs)",
    "/devices/{device_id}/actions": "a counter's latest actions, swapped into its page by"
    " actions.js (audited there, seeded with a self-test's results)",
    "/api/v1/devices/{device_id}/actions": "JSON API",
    "/api/v1/devices/{device_id}/actions/{action_id}": "JSON API",
    "/api/v1/calls": "JSON API",
    "/api/v1/statistics": "JSON API",
    "/api/v1/timetables": "JSON API",
    "/api/v1/appointments": "JSON API",
    "/api/v1/audit": "JSON API",
    "/metrics": "Prometheus exposition",
    "/api/v1/releases": "JSON API",
    "/api/v1/releases/in-use": "JSON API",
    "/api/v1/rollouts": "JSON API",
    "/api/v1/rollouts/{rollout_id}": "JSON API",
    "/api/v1/bundles/{version}": "a counter's bundle download (its own credentials)",
    "/devices/{device_id}/screenshots/{shot_id}.png": "a counter's screenshot, an image shown"
    " on its page (audited there)",
    "/devices/{device_id}/logs/{logs_id}.jsonl.gz": "a counter's logs, a download",
}
# Not a route: the French error page, as any unknown address shows it.
ERROR_PAGE = "/cette-page-n-existe-pas"
ROLES = ("admin", "auditor", "agent", "reception")
# The statement's sections, as RGAA 4.1's model has them.
STATEMENT_SECTIONS = (
    "État de conformité",
    "Résultats des tests",
    "Contenus non accessibles",
    "Établissement de cette déclaration",
    "Retour d'information et contact",
    "Voies de recours",
)


def _get_routes(live: LiveApp) -> set[str]:
    return {path for method, path in app_routes(live.app) if method == "GET"}


def _seed(live: LiveApp) -> None:
    now = datetime.now(UTC)
    live.add_user("admin", role="admin", service=None)
    live.add_user("auditeur", role="auditor", service=None)
    live.add_user("agent-caf", role="agent", service="caf")
    live.add_user("accueil", role="reception", service=None)
    live.add_user("admin-totp", role="admin", service=None)
    with live.sessions.begin() as session:
        session.execute(update(User).where(User.username == "accueil").values(site=SITE))
        session.execute(
            update(User).where(User.username == "admin-totp").values(totp_secret="JBSWY3DPEHPK3PXP")
        )
        for i, counter in enumerate(COUNTERS):
            row: dict[str, Any] = device_row(i, now)
            row |= {"id": counter.device_id, "site": counter.site, "name": counter.name}
            row |= {"state": ("online", "offline", "online", "silent")[i], "open_alerts": i % 2}
            session.add(Device(**row, service=counter.service))
        session.flush()
        session.add_all(
            Alert(device_id=c.device_id, kind="offline", raised_at=now) for c in COUNTERS[1::2]
        )
        session.add(
            Alert(device_id=DEVICE.device_id, kind="disk", raised_at=now - timedelta(days=1),
                  cleared_at=now - timedelta(hours=2))
        )  # fmt: skip
        session.add(StatusChange(device_id=DEVICE.device_id, at=now, state="online",
                                 reason="connected"))  # fmt: skip
        ended = {"call_id": "c-1", "service": "caf", "duration_s": 75.0,
                 "reason": "hangup_counter"}  # fmt: skip
        session.add(EventRecord(id=uuid.uuid4(), device_id=DEVICE.device_id, at=now,
                                received_at=now, kind="call_ended", data=ended))  # fmt: skip
        checks = [
            {"name": "camera", "outcome": "ok", "detail": "caméra présente"},
            {"name": "printer", "outcome": "echec", "detail": "imprimante en erreur"},
        ]
        session.add(CommandRecord(request_id=uuid.uuid4(), device_id=DEVICE.device_id,
                                  name="selftest", args={}, sent_at=now, acked_at=now, ok=True,
                                  detail="autotest : 1 contrôle(s) en échec sur 2", actor="admin",
                                  checks=checks))  # fmt: skip
        release = Release(version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10,
                          sha256="a" * 64, path="/nowhere", uploaded_at=now,
                          uploaded_by="admin")  # fmt: skip
        session.add(release)
        session.flush()
        rollout = RolloutRecord(release_id=release.id, state="stopped", wave_specs=[],
                                waves=[[DEVICE.device_id]], current_wave=0, wave_timeout_s=60,
                                margin_s=0, duration_s=0, created_at=now, created_by="admin",
                                reason="Arrêt automatique : 1 guichet(s) en échec sur 1 dans"
                                " la vague 1.")  # fmt: skip
        session.add(rollout)
        session.flush()
        session.add(CounterUpdateRecord(rollout_id=rollout.id, device_id=DEVICE.device_id,
                                        release="1.5.0", wave=0, state="rolled_back",
                                        reason="Autotest échoué : caméra", since=now))  # fmt: skip
        session.add(CommandRecord(request_id=LOGS_ID, device_id=DEVICE.device_id,
                                  name="fetch_logs", args={"minutes": 5}, sent_at=now,
                                  acked_at=now, ok=True, actor="admin"))  # fmt: skip
        session.flush()
        logs = gzip.compress(
            b'{"ts": "2025-03-04T10:00:00+00:00", "level": "INFO", "logger": "appliance",'
            b' "msg": "counter started"}\n'
            b'{"ts": "2025-03-04T10:01:00+00:00", "level": "WARNING", "logger": "appliance.hw",'
            b' "msg": "printer paper low", "device_id": "monts-de-chalus"}\n'
        )
        session.add(SupportUpload(request_id=LOGS_ID, device_id=DEVICE.device_id,
                                  media_type="application/gzip", size=len(logs), body=logs,
                                  received_at=now,
                                  expires_at=now + timedelta(days=1)))  # fmt: skip
        an_hour_ago = now - timedelta(hours=1)  # a restart left unanswered
        session.add(CommandRecord(request_id=uuid.uuid4(), device_id=DEVICE.device_id,
                                  name="restart", args={}, sent_at=an_hour_ago,
                                  expires_at=an_hour_ago, actor="admin"))  # fmt: skip
        session.add(
            CallRecord(id=uuid.uuid4(), device_id=DEVICE.device_id, site=SITE, service="caf",
                       requested_at=now - timedelta(minutes=3),
                       answered_at=now - timedelta(minutes=2), ended_at=now,
                       end_reason="hangup_counter")
        )  # fmt: skip
        seed_schedules(session)
        seed_statistics(session, now.astimezone(PARIS).date())
        start = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        session.add(
            Appointment(service="msa", device_id=DEVICE.device_id, start=start,
                        end=start + timedelta(minutes=30), citizen_name="Jeanne",
                        citizen_phone="05 55 00 00 00", created_at=now, created_by="accueil")
        )  # fmt: skip
        audit.record(session, "admin", "service.update", "caf", fallback_s=30, phone=None)
        token = enrolment.create_token(
            session, site=SITE, valid_hours=24, max_uses=2, pre_approved=False, actor="admin"
        )
    with live.sessions() as session:
        enrolment.request(session, token, "nouveau-guichet", "0000000012345678", "Salle des fêtes")
    with live.sessions() as session:
        assert session.query(AuditEntry).count() >= 1


async def _log_in(page: Page, live: LiveApp, username: str) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page).not_to_have_url(live.url + "/login")


async def _footer_links_the_statement(page: Page) -> None:
    footer = page.get_by_role("contentinfo")
    link = footer.get_by_role("link", name=f"Accessibilité : {ACCESSIBILITY_COMPLIANCE}")
    await expect(link).to_have_attribute("href", "/accessibilite")


def _bundled_axe_version() -> str:
    """The axe-core version in the package's bundled script (its first line names it)."""
    script = importlib.resources.files("axe_playwright_python").joinpath("axe.min.js")
    with script.open(encoding="utf-8") as f:
        first = f.readline()  # "/*! axe v4.12.1"
    return first.split(" v", 1)[1].strip()


def _describe(violation: dict[str, Any]) -> str:
    nodes = violation["nodes"]
    targets = ", ".join(" ".join(str(t) for t in node["target"]) for node in nodes[:4])
    more = f" (+{len(nodes) - 4})" if len(nodes) > 4 else ""
    return f"[{violation['impact']}] {violation['id']}: {violation['help']} — {targets}{more}"


class Audit:
    """What axe found, page by page; ``failures`` are the critical and serious ones."""

    def __init__(self) -> None:
        self.axe = Axe()
        self.seen: dict[str, list[dict[str, Any]]] = {}
        self.visited: set[str] = set()

    async def check(self, page: Page, label: str) -> None:
        results = await self.axe.run(page)
        self.seen[label] = results.response["violations"]

    def failures(self) -> list[str]:
        lines = []
        for label, violations in self.seen.items():
            for v in violations:
                if v["impact"] in FAILING_IMPACTS:
                    lines.append(f"{label}: {_describe(v)}")
        return lines

    def counts(self) -> Counter[tuple[str, str]]:
        """(rule, impact) → pages where it was found."""
        return Counter((v["id"], v["impact"]) for vs in self.seen.values() for v in vs)


async def _audit_as(browser: Browser, live: LiveApp, result: Audit, role: str | None) -> None:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="fr-FR", timezone_id="Europe/Paris"
    )
    page = await context.new_page()
    username = {"admin": "admin", "auditor": "auditeur", "agent": "agent-caf",
                "reception": "accueil"}.get(role or "")  # fmt: skip
    if username:
        await _log_in(page, live, username)
    for route, addresses in PAGES.items():
        for address in addresses:
            await page.goto(live.url + address)
            await page.wait_for_load_state("networkidle")
            await _footer_links_the_statement(page)
            result.visited.add(route)
            await result.check(page, f"{role or 'anonyme'} {address} → {page.url[len(live.url) :]}")
    await page.goto(live.url + ERROR_PAGE)
    await result.check(page, f"{role or 'anonyme'} {ERROR_PAGE}")
    await context.close()


async def _audit_totp_login(browser: Browser, live: LiveApp, result: Audit) -> None:
    """The second step of an administrator's login with a second factor."""
    page = await browser.new_page(locale="fr-FR")
    await _log_in(page, live, "admin-totp")
    await expect(page).to_have_url(live.url + "/login/totp")
    result.visited.add("/login/totp")
    await result.check(page, "admin-totp /login/totp")
    await page.close()


async def test_every_page_as_every_role_passes_axe(tmp_path: Path) -> None:
    async with live_app(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as live:
        routes = _get_routes(live)
        unlisted = routes - PAGES.keys() - NOT_PAGES.keys()
        assert not unlisted, f"GET routes neither audited nor listed as not pages: {unlisted}"
        assert not (PAGES.keys() | NOT_PAGES.keys()) - routes, "a listed route is gone"
        _seed(live)
        result = Audit()
        async with async_chromium() as browser:
            for role in (*ROLES, None):
                await _audit_as(browser, live, result, role)
            await _audit_totp_login(browser, live, result)
        assert result.visited == set(PAGES), set(PAGES) - result.visited
        for (rule, impact), pages in sorted(result.counts().items()):
            print(f"axe: {impact:8} {rule:30} on {pages} page(s)")  # noqa: T201
        failures = result.failures()
        assert not failures, "axe-core found:\n" + "\n".join(failures)


def test_the_statement_says_what_the_audit_checks() -> None:
    """Its list of pages is the audit's, and the axe-core it names is the one bundled."""
    assert set(AUDITED_PAGES) == set(PAGES)
    assert _bundled_axe_version() == AXE_CORE_VERSION


async def test_the_statement_is_public_and_in_french(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
    async with live_app(db) as live, async_chromium() as browser:
        page = await browser.new_page(locale="fr-FR")
        await page.goto(live.url + "/login")
        await _footer_links_the_statement(page)
        await page.get_by_role("link", name=f"Accessibilité : {ACCESSIBILITY_COMPLIANCE}").click()
        await expect(page).to_have_url(live.url + "/accessibilite")  # no login asked
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Déclaration d'accessibilité"
        )
        headings = page.get_by_role("heading", level=2)
        await expect(headings).to_have_text(list(STATEMENT_SECTIONS))
        main = page.get_by_role("main")
        await expect(main).to_contain_text(f"Guichet Proche est {ACCESSIBILITY_COMPLIANCE}")
        await expect(main).to_contain_text(f"axe-core {AXE_CORE_VERSION}")
        await expect(main).to_contain_text("aucune erreur critique ou grave")
        await expect(main).to_contain_text("Défenseur des droits")
        for route in PAGES:
            await expect(main.locator(".audited-pages")).to_contain_text(route)
