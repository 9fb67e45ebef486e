"""The scanner port: one contract for the fake and real SANE (its ``test`` backend)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from appliance.hw.ports import Scanner
from appliance.hw.ports.scanner import SIMULATED_SCANNER, SimulatedScanner
from appliance.hw.sane import scanner as sane_scanner
from appliance.hw.sane.scanner import SaneDevice, SaneScanner
from guichet.contract import DeviceHealth
from tests.support.sane import sane_test_backend_fixture  # noqa: F401


@dataclass
class ScannerRig:
    make: Callable[[str | None], Scanner]  # device name (None: any) → adapter
    present: str  # a device this rig's backend has


@pytest.fixture(params=["simulated", "sane"])
def scanner_rig(request: pytest.FixtureRequest) -> ScannerRig:
    if request.param == "sane":
        device: str = request.getfixturevalue("sane_test_backend")
        return ScannerRig(SaneScanner, device)
    return ScannerRig(SimulatedScanner, SIMULATED_SCANNER)


async def test_configured_scanner_is_ok(scanner_rig: ScannerRig) -> None:
    scanner = scanner_rig.make(scanner_rig.present)
    assert isinstance(scanner, Scanner)
    state = await scanner.state()
    assert state.health is DeviceHealth.OK
    assert scanner_rig.present in state.devices
    assert state.model


async def test_any_scanner_will_do_when_none_is_named(scanner_rig: ScannerRig) -> None:
    state = await scanner_rig.make(None).state()
    assert state.health is DeviceHealth.OK
    assert state.devices


async def test_missing_scanner_is_absent_but_lists_the_others(scanner_rig: ScannerRig) -> None:
    state = await scanner_rig.make("nosuch:0").state()
    assert state.health is DeviceHealth.ABSENT
    assert state.detail == "introuvable : nosuch:0"
    assert scanner_rig.present in state.devices


async def test_sane_device_list_is_cached_until_invalidated(
    sane_test_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = sane_scanner.list_sane_devices

    def counting() -> list[SaneDevice]:
        calls.append(1)
        return real()

    monkeypatch.setattr(sane_scanner, "list_sane_devices", counting)
    scanner = SaneScanner(sane_test_backend)
    for _ in range(3):
        assert (await scanner.state()).health is DeviceHealth.OK
    assert len(calls) == 1
    scanner.invalidate()
    await scanner.state()
    assert len(calls) == 2


async def test_sane_test_backend_model(sane_test_backend: str) -> None:
    state = await SaneScanner(sane_test_backend).state()
    assert state.model == "Noname frontend-tester"


async def test_python_sane_missing_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sane", None)
    state = await SaneScanner("test:0").state()
    assert (state.health, state.detail) == (DeviceHealth.ABSENT, "python-sane not installed")
