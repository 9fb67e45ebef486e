"""Remote support's actions on a running counter (issue 14): the ``cmd`` handlers for
``guichet.actions.Action`` — restart the software, reboot the box, run the self-test,
refresh the configuration, set the loudspeaker's volume and the screen's brightness (through
their ports; refused with the hardware's reason where it does not allow it), send what
the screen shows or the last minutes of logs (``appliance/support_files.py``: uploaded over
HTTPS before the ack), and the test call (``appliance/call/line_test.py``, given by the
composition root when calls are on).

Each answers in French in its ``cmd/ack``. Those that would cut off whoever stands at the
counter (``guichet.actions.DISRUPTIVE``) are refused while a call or its questionnaire is
under way, with what the counter is doing; the server refuses them first, this is the
counter's own word on it (its state is the truth). A restart or a reboot happens
``AFTER_ACK_S`` after its ack is queued: the ack is in the outbox on disk by then, and goes
out before the stop or, at worst, on the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from appliance.errors import ApplianceError, HardwareError
from appliance.fleet.commands import CommandFailed, CommandHandler, Done, Handler
from appliance.fleet.settings import RuntimeSettings
from appliance.hw.ports import Backlight, SpeakerVolume, SystemPower
from appliance.selftest_report import CheckResult, Outcome, event_data
from appliance.support_files import SupportFiles
from guichet import contract
from guichet.actions import DISRUPTIVE, PERCENT_ARG, Action

logger = logging.getLogger(__name__)

AFTER_ACK_S = 2.0  # the ack's PUBACK comes within ms on a working link
CONFIG_WAIT_S = 10.0  # the retained config is published just before the command

Busy = Callable[[], str | None]  # what keeps the counter from being interrupted, or None
RunChecks = Callable[[], Awaitable[list[CheckResult]]]
Emit = Callable[[contract.EventKind, dict[str, contract.Scalar]], None]


class RemoteActions:
    """The actions' handlers for one running counter; ``register`` them with its commands."""

    def __init__(
        self,
        *,
        settings: RuntimeSettings,
        power: SystemPower,
        volume: SpeakerVolume,
        backlight: Backlight,
        stop: Callable[[], None],
        busy: Busy,
        run_checks: RunChecks,
        emit: Emit,
        after_ack_s: float = AFTER_ACK_S,
        config_wait_s: float = CONFIG_WAIT_S,
        test_call: Handler | None = None,
        support: SupportFiles | None = None,
    ) -> None:
        self._settings = settings
        self._power = power
        self._volume = volume
        self._backlight = backlight
        self._stop = stop
        self._busy = busy
        self._run_checks = run_checks
        self._emit = emit
        self._after_ack_s = after_ack_s
        self._config_wait_s = config_wait_s
        self._test_call = test_call or _no_calls
        self._pending: set[asyncio.Task[None]] = set()
        self._selftest_lock = asyncio.Lock()
        self._support = support or SupportFiles(screen=None, logs=None, uploader=None, busy=busy)

    def register(self, commands: CommandHandler) -> None:
        handlers: dict[Action, Handler] = {
            Action.RESTART: self._restart,
            Action.REBOOT: self._reboot,
            Action.SELFTEST: self._selftest,
            Action.REFRESH_CONFIG: self._refresh_config,
            Action.SET_VOLUME: self._set_volume,
            Action.SET_BRIGHTNESS: self._set_brightness,
            Action.TEST_CALL: self._test_call,
            Action.SCREENSHOT: self._support.screenshot,
            Action.FETCH_LOGS: self._support.fetch_logs,
        }
        for action, handler in handlers.items():
            commands.register(action.value, self._guarded(action, handler))

    def _guarded(self, action: Action, handler: Handler) -> Handler:
        async def guarded(command: contract.Command) -> str | Done:
            if action in DISRUPTIVE and (doing := self._busy()) is not None:
                raise CommandFailed(f"refusé : un usager est au guichet ({doing})")
            return await handler(command)

        return guarded

    async def _restart(self, command: contract.Command) -> str:
        asyncio.get_running_loop().call_later(self._after_ack_s, self._stop)
        logger.warning("restart asked by the fleet", extra={"in_s": self._after_ack_s})
        return "redémarrage du logiciel du guichet"

    async def _reboot(self, command: contract.Command) -> str:
        task = asyncio.create_task(self._reboot_later(), name="reboot")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        logger.warning("reboot asked by the fleet", extra={"in_s": self._after_ack_s})
        return "redémarrage du boîtier"

    async def _reboot_later(self) -> None:
        await asyncio.sleep(self._after_ack_s)
        try:
            await self._power.reboot()
        except ApplianceError as exc:  # the ack said "asked": the journal says it failed
            logger.error("reboot failed", extra={"error": str(exc)})
            self._emit(contract.EventKind.ERROR, {"component": "other", "detail": str(exc)})

    async def _selftest(self, command: contract.Command) -> Done:
        if self._selftest_lock.locked():
            raise CommandFailed("un autotest est déjà en cours")
        async with self._selftest_lock:
            results = await self._run_checks()
        self._emit(contract.EventKind.SELFTEST, event_data(results))
        failed = sum(r.outcome is Outcome.FAILED for r in results)
        checks = [
            contract.CheckReport(name=r.name, outcome=r.outcome, detail=r.detail[:256])
            for r in results
        ]
        detail = (
            f"autotest réussi ({len(results)} contrôles)"
            if failed == 0
            else f"autotest : {failed} contrôle(s) en échec sur {len(results)}"
        )
        return Done(detail, checks)

    async def _refresh_config(self, command: contract.Command) -> str:
        wanted = command.args.get("version")
        if not isinstance(wanted, int) or isinstance(wanted, bool):
            raise CommandFailed("argument « version » entier attendu")
        settings = self._settings
        try:
            async with asyncio.timeout(self._config_wait_s):
                while (have := _version(settings)) is None or have < wanted:
                    await settings.wait_changed(settings.generation)
        except TimeoutError:
            raise CommandFailed(
                f"configuration n° {wanted} non reçue en {self._config_wait_s:.0f} s"
                f" (le guichet a la n° {_version(settings) or 'aucune'})"
            ) from None
        return f"configuration n° {have} appliquée"

    async def _set_volume(self, command: contract.Command) -> str:
        try:
            done = await self._volume.set_volume(_percent(command))
        except HardwareError as exc:
            raise CommandFailed(str(exc)) from None
        return f"volume du haut-parleur réglé à {done} %"

    async def _set_brightness(self, command: contract.Command) -> str:
        try:
            done = await self._backlight.set_brightness(_percent(command))
        except HardwareError as exc:
            raise CommandFailed(str(exc)) from None
        return f"luminosité de l'écran réglée à {done} %"


async def _no_calls(command: contract.Command) -> str:
    raise CommandFailed("les appels ne sont pas configurés sur ce guichet")


def _percent(command: contract.Command) -> int:
    value = command.args.get(PERCENT_ARG)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise CommandFailed(f"argument « {PERCENT_ARG} » : entier de 0 à 100 attendu")
    return value


def _version(settings: RuntimeSettings) -> int | None:
    config = settings.device_config
    return config.version if config is not None else None
