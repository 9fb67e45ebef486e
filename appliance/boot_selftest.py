"""The technician's self-test at boot: hold the call button down while the counter starts.

``guichet appliance run`` looks at the button before anything else takes its pin; held for
``HOLD_AT_BOOT_S`` it runs the same self-test as ``guichet selftest`` (report on standard
output, on the console ``/dev/tty1`` when there is one, and to the fleet as a ``selftest``
event), then starts the counter as usual. Without a keyboard or a laptop, this and the SD
card's ``autotest.txt`` are the technician's two ways in.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from appliance.config import ApplianceConfig
from appliance.errors import ApplianceError
from appliance.hw.gpio.pins import button_held, make_pin_factory
from guichet.errors import GuichetError

logger = logging.getLogger(__name__)

HOLD_AT_BOOT_S = 3.0  # longer than any call's long press: no accident at power-on
CONSOLE = Path("/dev/tty1")


def button_held_at_boot(
    config: ApplianceConfig, hold_s: float = HOLD_AT_BOOT_S, *, pin_factory: object | None = None
) -> bool:
    """True when the (gpiozero) call button is down now and stays down ``hold_s``."""
    hw = config.hardware
    if hw.button != "gpiozero":
        return False
    factory = pin_factory if pin_factory is not None else make_pin_factory(hw)
    return button_held(hw.button_pin, hold_s, pin_factory=factory)


def run_boot_selftest(config: ApplianceConfig) -> bool:
    """Run the self-test; True when every check passed. Never stops the counter's start."""
    from appliance.selftest import run_selftest
    from appliance.selftest_report import Outcome, report_text

    logger.warning("button held at boot: running the self-test")
    try:
        results = asyncio.run(run_selftest(config, ask=_tell))
    except (ApplianceError, GuichetError) as exc:
        logger.error("self-test could not run", extra={"error": str(exc)})
        return False
    report = report_text(results)
    _tell(report)
    return all(result.outcome is not Outcome.FAILED for result in results)


def _tell(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    try:
        with CONSOLE.open("a", encoding="utf-8") as console:
            console.write(text + "\n")
    except OSError:
        pass  # no console here (a laptop, a test): standard output is enough
