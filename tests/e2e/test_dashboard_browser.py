"""End to end in real headless Chromium: the fleet server (``guichet fleet serve``) with its
MQTT ingest on a private Mosquitto, four real counters (``guichet appliance run``, simulated
hardware); log in through the form, see four counters online, stop one and watch its row
turn offline without a page reload; an anonymous visitor is sent to the login page.

Also saves ``docs/screenshots/dashboard.png``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import chromium
from tests.support.mosquitto import Broker, free_port, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GUICHET = str(Path(sys.executable).with_name("guichet"))
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"
PASSWORD = "mot de passe de la démo e2e"
WAIT_MS = 30_000  # generous for a loaded CI machine; the waits end as soon as the page shows it
COUNTERS = (
    ("bandiat-tardoire-avenir", "Bandiat Tardoire Avenir", "Mairie"),
    ("pays-de-la-meteorite", "Pays de la Météorite", "Mairie"),
    ("monts-de-chalus", "Monts de Châlus", "Maison des associations"),
    ("vallee-de-la-gorre", "Vallée de la Gorre", "Centre social"),
)
ROWS_ONLINE = '#fleet-body tr[data-state="online"]'


@dataclass
class Fleet:
    url: str
    counters: dict[str, subprocess.Popen[bytes]]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _counter_config(tmp_path: Path, broker: Broker, device_id: str, site: str, name: str) -> Path:
    path = tmp_path / f"{device_id}.toml"
    path.write_text(
        f'[device]\nid = "{device_id}"\nsite = "{site}"\nname = "{name}"\n'
        f'data_dir = "{tmp_path / device_id}"\n\n'
        f'[fleet]\nmqtt_url = "{broker.url}"\nkeepalive_s = 5\ntelemetry_interval_s = 2\n'
        "reconnect_max_s = 2.0\n\n"
        '[hardware]\nbutton = "simulated"\nlight = "simulated"\ncamera = "simulated"\n'
        'printer = "simulated"\nscanner = "simulated"\nusb = "simulated"\nsystem = "simulated"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fleet(tmp_path: Path, broker: Broker) -> Iterator[Fleet]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")} | {
        "GUICHET_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        "GUICHET_MQTT_URL": broker.url,
        "GUICHET_SECRET_KEY": secrets.token_urlsafe(32),
        "GUICHET_STALENESS_CHECK_S": "1",
        "GUICHET_ALERT_OFFLINE_AFTER_MIN": "0",
        "GUICHET_DASHBOARD_REFRESH_S": "0.5",
        "GUICHET_HOST": "127.0.0.1",
        "GUICHET_SESSION_COOKIE_SECURE": "false",  # plain HTTP on loopback
    }
    created = subprocess.run(
        [GUICHET, "fleet", "create-user", "admin", "--password-stdin"],
        input=PASSWORD.encode(),
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    server = _spawn([GUICHET, "fleet", "serve", "--port", str(port)], env, tmp_path / "server.log")
    counters: dict[str, subprocess.Popen[bytes]] = {}
    try:
        wait_port(port, timeout_s=60)
        for device_id, site, name in COUNTERS:
            config = _counter_config(tmp_path, broker, device_id, site, name)
            args = [GUICHET, "appliance", "run", "--config", str(config)]
            counters[device_id] = _spawn(args, env, tmp_path / f"{device_id}.log")
        yield Fleet(f"http://127.0.0.1:{port}", counters)
    finally:
        for process in counters.values():
            _stop(process)
        _stop(server)


def _log_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.get_by_label("Identifiant").fill("admin")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(base + "/")


def test_dashboard_shows_counters_and_a_stopped_one_goes_offline_live(fleet: Fleet) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1500, "height": 860}, locale="fr-FR")
        page = context.new_page()
        _log_in(page, fleet.url)
        expect(page.locator(ROWS_ONLINE)).to_have_count(4, timeout=WAIT_MS)
        expect(page.locator("#fleet-body tr[data-device-id]")).to_have_count(4)

        page.evaluate("window.__same_page = true")  # lost if the page reloads
        stopped = "monts-de-chalus"
        fleet.counters[stopped].send_signal(signal.SIGTERM)  # a clean stop says "offline"
        row = page.locator(f'#fleet-body tr[data-device-id="{stopped}"]')
        expect(row).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
        expect(row).to_contain_text("Hors ligne")
        assert page.evaluate("window.__same_page === true")
        assert fleet.counters[stopped].wait(timeout=10) == 0
        others = page.locator('#fleet-body tr[data-state="online"]')
        expect(others).to_have_count(3)

        # The offline alert is raised by the server's periodic check (threshold 0 min here).
        expect(page.locator('[data-count="alerts"]')).to_have_text("1", timeout=WAIT_MS)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        anonymous = browser.new_context().new_page()
        anonymous.goto(fleet.url + "/")
        expect(anonymous).to_have_url(fleet.url + "/login?next=/")
        expect(anonymous.get_by_role("heading", name="Connexion")).to_be_visible()
