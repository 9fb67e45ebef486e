"""The printer port: the reason → health rules, and one contract for the fake and CUPS.

The CUPS side runs against a real scheduler: a cups-pdf queue, and a queue whose backend
fails the way an unplugged USB printer's does (see ``tests/support/cups.py``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.hw.cups.printer import CupsPrinter
from appliance.hw.ports import Printer
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.printer_status import printer_state, reason_health, state_from_attributes
from guichet.contract import DeviceHealth
from tests.support.cups import (
    FAULT_MESSAGE,
    CupsQueues,
    break_queue,
    cups_queues_fixture,  # noqa: F401  # the session fixture
    cups_scheduler_fixture,  # noqa: F401  # the session fixture
    repair_queue,
)


@pytest.mark.parametrize(
    ("reason", "health"),
    [
        ("media-empty", DeviceHealth.ERROR),
        ("media-empty-error", DeviceHealth.ERROR),
        ("media-jam-error", DeviceHealth.ERROR),
        ("offline-report", DeviceHealth.ERROR),
        ("paused", DeviceHealth.ERROR),
        ("door-open-warning", DeviceHealth.ERROR),
        ("toner-low-report", DeviceHealth.WARNING),
        ("media-low", DeviceHealth.WARNING),
        ("marker-supply-low-warning", DeviceHealth.WARNING),
        ("some-vendor-thing-warning", DeviceHealth.WARNING),
        ("some-vendor-thing-error", DeviceHealth.ERROR),
        ("cups-waiting-for-job-completed", DeviceHealth.OK),
    ],
)
def test_reason_severity(reason: str, health: DeviceHealth) -> None:
    assert reason_health(reason) is health


def test_none_is_dropped_and_the_worst_reason_wins() -> None:
    state = state_from_attributes(
        {
            "printer-state": 4,
            "printer-state-reasons": ["none", "toner-low-report", "media-empty-error"],
            "printer-state-message": "",
            "printer-make-and-model": "HP LaserJet",
        }
    )
    assert state.state == "processing"
    assert state.reasons == ["toner-low-report", "media-empty-error"]
    assert state.health is DeviceHealth.ERROR
    assert state.detail == "media-empty-error"
    assert state.model == "HP LaserJet"


def test_a_stopped_or_rejecting_queue_is_an_error_even_without_reasons() -> None:
    stopped = printer_state(ipp_state=5, reasons=["none"], message=None, model=None)
    assert (stopped.health, stopped.state, stopped.reasons) == (DeviceHealth.ERROR, "stopped", [])
    rejecting = printer_state(
        ipp_state=3, reasons=[], message=None, model=None, accepting_jobs=False
    )
    assert (rejecting.health, rejecting.detail) == (DeviceHealth.ERROR, "refuse les impressions")


def test_warnings_only_make_a_warning() -> None:
    state = printer_state(ipp_state=3, reasons=["toner-low"], message=None, model=None)
    assert (state.health, state.detail) == (DeviceHealth.WARNING, "toner-low")


# --- one contract, two adapters ----------------------------------------------------------


@dataclass
class PrinterRig:
    printer: Printer
    break_printer: Callable[[], Awaitable[None]]  # as an unplugged USB printer does
    repair: Callable[[], Awaitable[None]]


@pytest.fixture(params=["simulated", "cups"])
async def printer_rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PrinterRig]:
    if request.param == "cups":
        queues: CupsQueues = request.getfixturevalue("cups_queues")
        queue = queues.failing

        async def break_cups() -> None:
            await break_queue(queues, tmp_path / "page.txt")

        rig = PrinterRig(
            CupsPrinter(queue, server=queues.server),
            break_cups,
            lambda: repair_queue(queues, queue),
        )
    else:
        fake = SimulatedPrinter()

        async def break_fake() -> None:
            fake.stop(FAULT_MESSAGE)

        async def repair_fake() -> None:
            fake.resume()

        rig = PrinterRig(fake, break_fake, repair_fake)
    yield rig
    await rig.repair()


async def test_healthy_printer_is_idle_and_ok(printer_rig: PrinterRig) -> None:
    assert isinstance(printer_rig.printer, Printer)
    state = await printer_rig.printer.state()
    assert (state.health, state.state, state.reasons) == (DeviceHealth.OK, "idle", [])
    assert state.detail is None


async def test_failed_printer_is_stopped_with_reasons(printer_rig: PrinterRig) -> None:
    await printer_rig.break_printer()
    state = await printer_rig.printer.state()
    assert (state.health, state.state) == (DeviceHealth.ERROR, "stopped")
    assert "paused" in state.reasons
    assert state.detail == FAULT_MESSAGE

    await printer_rig.repair()
    state = await printer_rig.printer.state()
    assert (state.health, state.state) == (DeviceHealth.OK, "idle")


# --- CUPS only ----------------------------------------------------------------------------


async def test_cups_pdf_queue_is_ok_with_its_model(cups_queues: CupsQueues) -> None:
    state = await CupsPrinter(cups_queues.pdf, server=cups_queues.server).state()
    assert state.health is DeviceHealth.OK
    assert state.model is not None
    assert "CUPS-PDF" in state.model


async def test_unknown_queue_is_absent(cups_queues: CupsQueues) -> None:
    state = await CupsPrinter(f"{cups_queues.pdf}-missing", server=cups_queues.server).state()
    assert state.health is DeviceHealth.ABSENT
    assert state.detail is not None
    assert "no such queue" in state.detail


async def test_default_destination_is_followed(cups_queues: CupsQueues) -> None:
    default = cups_queues.connection().getDefault()
    state = await CupsPrinter(None, server=cups_queues.server).state()
    if default is None:
        assert (state.health, state.detail) == (DeviceHealth.ABSENT, "no default printer")
    else:
        assert state.health is not DeviceHealth.ABSENT


async def test_scheduler_not_running_is_absent(tmp_path: Path) -> None:
    state = await CupsPrinter("any", server=str(tmp_path / "no-cupsd.sock")).state()
    assert (state.health, state.detail) == (DeviceHealth.ABSENT, "CUPS not running")


async def test_pycups_missing_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cups", None)  # import cups → ImportError
    state = await CupsPrinter("any").state()
    assert (state.health, state.detail) == (DeviceHealth.ABSENT, "pycups not installed")
