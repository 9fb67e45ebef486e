"""The technician's self-test against simulated hardware, real CUPS/SANE and a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.config import ApplianceConfig, parse_config
from appliance.hw.ports.camera import SimulatedCamera
from appliance.hw.ports.controls import SimulatedButton
from appliance.selftest import run_selftest
from appliance.selftest_report import CheckResult, Outcome, event_data, report_text
from appliance.wiring import Hardware
from guichet import contract
from tests.appliance.mqtt_observer import Observer
from tests.support.cups import (  # noqa: F401  # the session fixtures
    CupsQueues,
    cups_queues_fixture,
    cups_scheduler_fixture,
)
from tests.support.mosquitto import Broker, free_port
from tests.support.sane import sane_test_backend_fixture  # noqa: F401

DEVICE = "selftest-1"


def _config(tmp_path: Path, mqtt_url: str, hardware: str = "") -> ApplianceConfig:
    return parse_config(
        f"""
[device]
id = "{DEVICE}"
site = "Mairie de Test"
data_dir = "{tmp_path / "etat"}"
[fleet]
mqtt_url = "{mqtt_url}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[hardware]
{hardware}
"""
    )


class Technician:
    """Presses the button when asked; records what they were told."""

    def __init__(self, *, presses: bool = True, unplug_camera: bool = False) -> None:
        self.presses = presses
        self.unplug_camera = unplug_camera
        self.told: list[str] = []
        self.hardware: Hardware | None = None

    def attach(self, hardware: Hardware) -> None:
        self.hardware = hardware
        if self.unplug_camera:
            assert isinstance(hardware.camera, SimulatedCamera)
            hardware.camera.present = False

    def ask(self, text: str) -> None:
        self.told.append(text)
        if self.presses and "Appuyez" in text and self.hardware is not None:
            button = self.hardware.button
            assert isinstance(button, SimulatedButton)
            button.press()
            button.release()


async def _run(config: ApplianceConfig, tech: Technician, **kw: float) -> list[CheckResult]:
    return await run_selftest(
        config,
        ask=tech.ask,
        on_hardware=tech.attach,
        button_timeout_s=kw.get("button_timeout_s", 5.0),
        light_show_s=0.01,
        fleet_timeout_s=kw.get("fleet_timeout_s", 10.0),
    )


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


async def test_everything_passes_on_simulated_hardware_and_reaches_the_fleet(
    tmp_path: Path, broker: Broker
) -> None:
    observer = Observer(broker.port, [contract.topic(DEVICE, contract.Kind.EVENT)]).start()
    observer.wait_subscribed()
    try:
        results = await _run(_config(tmp_path, broker.url), Technician())
        seen = await observer.next_on(contract.topic(DEVICE, contract.Kind.EVENT))
    finally:
        observer.stop()
    by_name = _by_name(results)
    assert [r.name for r in results] == [
        "camera", "microphone", "speakers", "button", "light", "screen",
        "printer", "scanner", "network", "broker", "fleet",
    ]  # fmt: skip
    failed = {r.name: r.detail for r in results if r.outcome is Outcome.FAILED}
    assert failed == {}
    assert by_name["fleet"].outcome is Outcome.OK
    event = contract.decode(contract.Kind.EVENT, seen.payload)
    assert isinstance(event, contract.Event)
    assert event.kind is contract.EventKind.SELFTEST
    assert event.data["passed"] is True
    assert event.data["button"] == "ok"
    report = report_text(results)
    assert "Tout fonctionne." in report
    assert "Bouton d'appel : appui détecté" in report


async def test_unpressed_button_fails_with_its_meaning(tmp_path: Path, broker: Broker) -> None:
    tech = Technician(presses=False)
    results = await _run(_config(tmp_path, broker.url), tech, button_timeout_s=0.2)
    button = _by_name(results)["button"]
    assert button.outcome is Outcome.FAILED
    assert "aucun appui détecté" in button.detail
    assert "GPIO 17" in button.meaning
    assert any("Appuyez sur le gros bouton" in text for text in tech.told)
    report = report_text(results)
    assert "ÉCHEC" in report
    assert "1 problème(s) à corriger" in report
    assert event_data(results)["passed"] is False


async def test_missing_camera_and_unreachable_fleet_are_explained(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    tech = Technician(unplug_camera=True)
    results = await _run(_config(tmp_path, url), tech, fleet_timeout_s=0.5)
    by_name = _by_name(results)
    assert by_name["camera"].outcome is Outcome.FAILED
    assert "caméra introuvable" in by_name["camera"].detail
    assert by_name["broker"].outcome is Outcome.FAILED
    assert "refuse le port" in by_name["broker"].detail
    assert by_name["fleet"].outcome is Outcome.FAILED
    assert "partira plus tard" in by_name["fleet"].detail
    assert (tmp_path / "etat" / "outbox.sqlite3").exists()  # the report waits there


async def test_parts_configured_absent_are_skipped(tmp_path: Path, broker: Broker) -> None:
    hardware = 'camera = "none"\nprinter = "none"\nscanner = "none"'
    results = await _run(_config(tmp_path, broker.url, hardware), Technician())
    by_name = _by_name(results)
    for name in ("camera", "printer", "scanner"):
        assert by_name[name].outcome is Outcome.SKIPPED
    assert "ignoré" in report_text(results)


@pytest.mark.slow
async def test_real_cups_test_page_and_sane_test_scan(
    tmp_path: Path,
    broker: Broker,
    cups_queues: CupsQueues,
    sane_test_backend: str,
) -> None:
    hardware = (
        f'printer = "cups"\nprinter_queue = "{cups_queues.pdf}"\n'
        f'printer_server = "{cups_queues.server}"\n'
        f'scanner = "sane"\nscanner_device = "{sane_test_backend}"'
    )
    results = await _run(_config(tmp_path, broker.url, hardware), Technician())
    by_name = _by_name(results)
    assert by_name["printer"].outcome is Outcome.OK, by_name["printer"].detail
    assert "page de test imprimée" in by_name["printer"].detail
    assert by_name["scanner"].outcome is Outcome.OK, by_name["scanner"].detail
    assert "numérisation de test réussie" in by_name["scanner"].detail


@pytest.mark.slow
async def test_stopped_cups_queue_fails_the_printer_check(
    tmp_path: Path, broker: Broker, cups_queues: CupsQueues
) -> None:
    hardware = (
        f'printer = "cups"\nprinter_queue = "{cups_queues.failing}"\n'
        f'printer_server = "{cups_queues.server}"'
    )
    results = await _run(_config(tmp_path, broker.url, hardware), Technician())
    printer = _by_name(results)["printer"]
    assert printer.outcome is Outcome.FAILED
    assert "papier" in printer.meaning
    assert json.dumps(event_data(results))  # the event stays a flat, JSON-able dict


def test_command_with_a_bad_config_says_so_in_french(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guichet_cli.main import main

    bad = tmp_path / "guichet-appliance.toml"
    bad.write_text("[device]\nid = 'X'\n")
    assert main(["selftest", "--config", str(bad), "--rapport", str(tmp_path / "r.txt")]) == 2
    assert "configuration illisible" in capsys.readouterr().err
    assert not (tmp_path / "r.txt").exists()
