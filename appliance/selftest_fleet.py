"""The self-test's last check: report to the fleet through the counter's own link and outbox.

The report is an ``event`` of kind ``selftest`` stored in the counter's outbox first, then
sent by a ``FleetLink`` with the counter's identity — the agent's own path, so what the
fleet sees is what the agent would send. Delivered (PUBACKed) within the timeout: the check
passes. Otherwise it fails, and the report stays in the outbox: the agent sends it when it
is restarted and the network allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

from appliance.config import ApplianceConfig
from appliance.fleet.commands import CommandHandler
from appliance.fleet.link import FleetLink
from appliance.fleet.outbox import OUTBOX_FILE, Outbox
from appliance.fleet.settings import RuntimeSettings
from appliance.selftest_report import MEANINGS, CheckResult, Outcome, event_data
from guichet import contract

DELIVERY_POLL_S = 0.1  # the outbox has no "drained" signal; its count is exact in-process


async def _delivered(outbox: Outbox) -> None:
    """Return once the outbox is empty (every message PUBACKed)."""
    while outbox.count > 0:  # noqa: ASYNC110 - the outbox has no "drained" event to wait on
        await asyncio.sleep(DELIVERY_POLL_S)


async def report_to_fleet(
    config: ApplianceConfig, results: Sequence[CheckResult], *, timeout_s: float
) -> CheckResult:
    label = "Flotte (rapport envoyé)"
    outbox = await Outbox.open(
        config.device.data_dir / OUTBOX_FILE, config.fleet.outbox_max_messages
    )
    settings = RuntimeSettings(config.fleet.telemetry_interval_s)
    link = FleetLink(config, outbox, settings, CommandHandler(settings))
    runner = asyncio.create_task(link.run())
    try:
        event = contract.Event(
            id=uuid.uuid4(),
            at=contract.utcnow(),
            kind=contract.EventKind.SELFTEST,
            data=event_data(list(results)),
        )
        await link.send(contract.Kind.EVENT, event)
        try:
            async with asyncio.timeout(timeout_s):
                await link.wait_connected()
                await _delivered(outbox)
        except TimeoutError:
            where = "connecté, mais rapport non acquitté" if link.connected else "pas de connexion"
            return CheckResult(
                "fleet",
                label,
                Outcome.FAILED,
                f"{where} en {timeout_s:.0f} s ; le rapport partira plus tard",
                MEANINGS["fleet"],
            )
        return CheckResult("fleet", label, Outcome.OK, f"rapport reçu par {config.fleet.host}")
    finally:
        await link.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await outbox.close()
