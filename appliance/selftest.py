"""``guichet selftest``: the technician's check of a counter, part by part, in French.

Run it with the counter's service stopped (it needs the button's GPIO and the fleet
identity for itself): ``systemctl stop guichet; guichet selftest; systemctl start guichet``.
The config defaults to the one first boot wrote.

Each check gives *ok*, *échec* (with what it means and what to do) or *ignoré* (the part
is configured as absent). The report is printed and sent to the fleet as an event of kind
``selftest`` through the counter's own fleet link and outbox — so a counter with no network
sends it as soon as it has one.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from appliance import selftest_probes as hw
from appliance.config import ApplianceConfig, load_config
from appliance.errors import ApplianceError, ConfigError, DocumentError, SelfTestError
from appliance.hw.ports import DocumentPrinter, DocumentScanner, LightPattern, ScanSettings
from appliance.selftest_fleet import report_to_fleet
from appliance.selftest_report import MEANINGS, CheckResult, Outcome, report_text
from appliance.wiring import Hardware, build_hardware
from guichet import contract
from guichet.errors import GuichetError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/var/lib/guichet/config/guichet-appliance.toml")
BUTTON_TIMEOUT_S = 30.0
FLEET_TIMEOUT_S = 20.0
PRINT_TIMEOUT_S = 120.0  # a real USB printer warms up; cups-pdf takes ~0.3 s
JOB_POLL_S = 0.2
TEST_PAGE_TITLE = "Guichet Proche - page de test"
# A small grey area (50 mm square) at low resolution: the scan takes seconds, not minutes.
TEST_SCAN = ScanSettings(resolution=75, mode="gray", source="flatbed", area_mm=(50.0, 50.0))
LIGHT_SHOW_S = 3.0  # long enough for the technician to look up at the button
SILENCE_RMS = 0.0005  # below this, the microphone records digital silence (unplugged)
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


@dataclass
class SelfTest:
    """The checks, in the order a technician walks round the counter."""

    config: ApplianceConfig
    hardware: Hardware
    ask: Callable[[str], None]  # tells the technician what to do now
    button_timeout_s: float = BUTTON_TIMEOUT_S
    light_show_s: float = LIGHT_SHOW_S
    simulated_media: bool = False  # no ALSA, no DRM: the laptop and the tests
    results: list[CheckResult] = field(default_factory=list)

    async def run(self) -> list[CheckResult]:
        checks: list[tuple[str, str, str, Callable[[], Awaitable[str | None]]]] = [
            ("camera", "Caméra", MEANINGS["camera"], self._camera),
            ("microphone", "Micro", MEANINGS["microphone"], self._microphone),
            ("speakers", "Haut-parleurs", MEANINGS["speakers"], self._speakers),
            ("button", "Bouton d'appel", MEANINGS["button"], self._button),
            ("light", "Voyant du bouton", MEANINGS["light"], self._light),
            ("screen", "Écran", MEANINGS["screen"], self._screen),
            ("printer", "Imprimante", MEANINGS["printer"], self._printer),
            ("scanner", "Scanner", MEANINGS["scanner"], self._scanner),
            ("network", "Réseau", MEANINGS["network"], self._network),
            ("broker", "Serveur MQTT", MEANINGS["broker"], self._broker),
        ]
        for name, label, meaning, check in checks:
            self.results.append(await _one(name, label, meaning, check))
        return self.results

    async def run_unattended(self) -> list[CheckResult]:
        """The checks that need nobody at the counter and disturb nobody there (remote
        support's self-test, on the running counter): no button to press, no tone, no page
        printed or scanned — the printer and scanner say their state."""
        checks: list[tuple[str, str, str, Callable[[], Awaitable[str | None]]]] = [
            ("camera", "Caméra", MEANINGS["camera"], self._camera),
            ("screen", "Écran", MEANINGS["screen"], self._screen),
            ("printer", "Imprimante", MEANINGS["printer"], self._printer_state),
            ("scanner", "Scanner", MEANINGS["scanner"], self._scanner_state),
            ("network", "Réseau", MEANINGS["network"], self._network),
            ("broker", "Serveur MQTT", MEANINGS["broker"], self._broker),
        ]
        return [await _one(name, label, meaning, check) for name, label, meaning, check in checks]

    async def _printer_state(self) -> str | None:
        if self.config.hardware.printer == "none":
            return None
        return _healthy(await self.hardware.printer.state(), "imprimante")

    async def _scanner_state(self) -> str | None:
        if self.config.hardware.scanner == "none":
            return None
        return _healthy(await self.hardware.scanner.state(), "scanner")

    async def _camera(self) -> str | None:
        if self.config.hardware.camera == "none":
            return None
        return _healthy(await self.hardware.camera.state(), "caméra")

    async def _microphone(self) -> str | None:
        if self.simulated_media:
            return "micro simulé"
        level = await hw.record_level()
        if level < SILENCE_RMS:
            raise SelfTestError("le micro n'enregistre que du silence")
        return f"son enregistré (niveau {level:.3f})"

    async def _speakers(self) -> str | None:
        if self.simulated_media:
            return "haut-parleurs simulés"
        return await hw.play_tone() + " : vérifiez que vous l'avez entendu"

    async def _button(self) -> str | None:
        pressed = asyncio.Event()
        self.hardware.button.when_pressed(pressed.set)
        self.ask(f"Appuyez sur le gros bouton d'appel (dans les {self.button_timeout_s:.0f} s).")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.button_timeout_s):
                await pressed.wait()
        except TimeoutError:
            raise SelfTestError(f"aucun appui détecté en {self.button_timeout_s:.0f} s") from None
        return f"appui détecté après {time.monotonic() - started:.1f} s"

    async def _light(self) -> str | None:
        light = self.hardware.light
        self.ask("Regardez le voyant du bouton : il doit clignoter, puis rester allumé.")
        light.show(LightPattern.WAITING)
        await asyncio.sleep(self.light_show_s)
        light.show(LightPattern.IDLE)
        if light.pattern is not LightPattern.IDLE:
            raise SelfTestError("le voyant ne prend pas les ordres")
        return "le voyant a clignoté puis est resté allumé : vérifiez-le à l'œil"

    async def _screen(self) -> str | None:
        if self.simulated_media:
            return "écran simulé"
        screens = hw.connected_screens()
        if not screens:
            raise SelfTestError("aucun écran branché n'est détecté")
        return "écran détecté : " + ", ".join(screens)

    async def _printer(self) -> str | None:
        if self.config.hardware.printer == "none":
            return None
        printer = self.hardware.printer
        _healthy(await printer.state(), "imprimante")
        if not isinstance(printer, DocumentPrinter):
            raise SelfTestError("cette imprimante ne sait pas imprimer de page de test")
        return await print_test_page(printer, test_page_text(self.config.device.id))

    async def _scanner(self) -> str | None:
        if self.config.hardware.scanner == "none":
            return None
        scanner = self.hardware.scanner
        _healthy(await scanner.state(), "scanner")
        if not isinstance(scanner, DocumentScanner):
            raise SelfTestError("ce scanner ne sait pas numériser de page de test")
        try:
            pages = await scanner.scan(TEST_SCAN, lambda _page: None)
        except DocumentError as exc:
            raise SelfTestError(f"la numérisation a échoué : {exc.message}") from None
        page = pages[0]
        return f"numérisation de test réussie ({page.width}×{page.height} points)"

    async def _network(self) -> str | None:
        snapshot = await self.hardware.system.snapshot()
        up = [
            f"{name} ({', '.join(addresses)})"
            for name, is_up, addresses in snapshot.interfaces
            if is_up and addresses and name != "lo"
        ]
        if not up:
            raise SelfTestError("aucune connexion réseau active (ni câble, ni Wi-Fi)")
        return "connecté : " + "; ".join(up)

    async def _broker(self) -> str | None:
        fleet = self.config.fleet
        took = await hw.reach(fleet.host, fleet.port)
        return f"{fleet.host}:{fleet.port} joignable en {took * 1000:.0f} ms"


async def unattended_selftest(config: ApplianceConfig, hardware: Hardware) -> list[CheckResult]:
    """Remote support's self-test on the running counter's own hardware (no report to the
    fleet here: the caller answers the command)."""
    simulated = config.hardware.camera == "simulated" and config.hardware.button == "simulated"
    test = SelfTest(config, hardware, lambda _text: None, simulated_media=simulated)
    return await test.run_unattended()


def test_page_text(device_id: str) -> str:
    now = datetime.now().astimezone()
    return (
        "Guichet Proche - page de test\n\n"
        f"Guichet : {device_id}\n"
        f"Imprimée le {now:%d/%m/%Y à %H:%M}\n\n"
        "Si vous lisez cette page, l'imprimante du guichet fonctionne.\n"
    )


async def print_test_page(
    printer: DocumentPrinter, text: str, *, timeout_s: float = PRINT_TIMEOUT_S
) -> str:
    """Print ``text`` through the printer port and wait for the job to finish."""
    path = Path(f"/tmp/guichet-page-test-{time.monotonic_ns()}.txt")  # noqa: S108 - PrivateTmp
    await asyncio.to_thread(path.write_text, text, encoding="utf-8")
    try:
        try:
            job = await printer.submit(str(path), TEST_PAGE_TITLE)
        except DocumentError as exc:
            raise SelfTestError(f"l'imprimante a refusé la page : {exc.message}") from None
        try:
            async with asyncio.timeout(timeout_s):
                while (status := await printer.job_status(job)).state != "done":
                    if status.state == "failed":  # a stopped queue holds the job: drop it
                        await printer.cancel(job)
                        raise SelfTestError(
                            f"l'impression a échoué : {status.reason or 'travail annulé'}"
                        )
                    await asyncio.sleep(JOB_POLL_S)
        except TimeoutError:
            await printer.cancel(job)
            raise SelfTestError(f"la page n'est pas sortie en {timeout_s:.0f} s") from None
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return "page de test imprimée"


async def _one(
    name: str, label: str, meaning: str, check: Callable[[], Awaitable[str | None]]
) -> CheckResult:
    try:
        detail = await check()
    except SelfTestError as exc:
        return CheckResult(name, label, Outcome.FAILED, str(exc), meaning)
    except (ApplianceError, GuichetError, OSError) as exc:
        return CheckResult(name, label, Outcome.FAILED, f"erreur : {exc}", meaning)
    if detail is None:
        return CheckResult(name, label, Outcome.SKIPPED, "configuré comme absent")
    return CheckResult(name, label, Outcome.OK, detail)


def _healthy(state: contract.Peripheral, what: str) -> str:
    if state.health is contract.DeviceHealth.OK:
        return f"{what} présente" + (f" ({state.model})" if state.model else "")
    word = {"absent": "introuvable", "error": "en erreur", "warning": "en alerte"}
    raise SelfTestError(
        f"{what} {word.get(state.health.value, state.health.value)}"
        + (f" : {state.detail}" if state.detail else "")
    )


# --- the command -----------------------------------------------------------------------------


def main(config_path: Path | None = None, *, report_path: Path | None = None) -> int:
    """``guichet selftest [--config FILE] [--rapport FILE]``."""
    path = config_path or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"guichet : configuration illisible : {exc}\n")
        return EXIT_CONFIG
    logging.basicConfig(level=logging.WARNING)
    try:
        results = asyncio.run(run_selftest(config, ask=_say))
    except (ApplianceError, GuichetError) as exc:
        sys.stderr.write(
            f"guichet : matériel inutilisable ({exc}). Le service tourne-t-il encore ?"
            " Arrêtez-le : systemctl stop guichet\n"
        )
        return EXIT_FAILED
    report = report_text(results)
    sys.stdout.write(report)
    if report_path is not None:
        report_path.write_text(report, encoding="utf-8")
    return EXIT_OK if all(r.outcome is not Outcome.FAILED for r in results) else EXIT_FAILED


def _say(text: str) -> None:
    sys.stdout.write(f">>> {text}\n")
    sys.stdout.flush()


async def run_selftest(
    config: ApplianceConfig,
    *,
    ask: Callable[[str], None],
    button_timeout_s: float = BUTTON_TIMEOUT_S,
    light_show_s: float = LIGHT_SHOW_S,
    fleet_timeout_s: float = FLEET_TIMEOUT_S,
    on_hardware: Callable[[Hardware], None] | None = None,
) -> list[CheckResult]:
    """Build the hardware, run every check, then report to the fleet (one more check)."""
    hardware = build_hardware(config, asyncio.get_running_loop())
    try:
        if on_hardware is not None:
            on_hardware(hardware)
        simulated = config.hardware.camera == "simulated" and config.hardware.button == "simulated"
        test = SelfTest(
            config,
            hardware,
            ask,
            button_timeout_s=button_timeout_s,
            light_show_s=light_show_s,
            simulated_media=simulated,
        )
        results = await test.run()
    finally:
        hardware.close()
    results.append(await report_to_fleet(config, results, timeout_s=fleet_timeout_s))
    return results
