"""Remote commands: the server publishes a ``Command`` on the counter's ``cmd`` topic and
receives a ``CommandAck`` with the same request id on ``cmd/ack``.

Commands are looked up by name in a small registry; each handler returns a short French
detail for the administrator or raises ``CommandFailed``. An unknown name or bad argument
is answered ``ok=False``, never an exception. A QoS 1 command may be delivered twice: the
last acks are remembered by request id (and a command still running is awaited, not
started again), so a repeated command is answered again without running twice.

``start`` runs each command in its own task and hands its ack to a reply callback, so a
slow command (the self-test, a configuration awaited) never holds up the link's receiving:
the configuration it waits for arrives meanwhile. A handler's bug is logged and answered
``ok=False`` (« erreur interne »): a command never takes the link down.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from appliance.fleet.settings import RuntimeSettings
from appliance.hw.ports.controls import SimulatedButton
from guichet import contract

logger = logging.getLogger(__name__)

REMEMBERED_ACKS = 64  # far more than the commands a server sends within a redelivery window


@dataclass(frozen=True)
class Done:
    """A handler's answer beyond its detail: the self-test's checks."""

    detail: str
    checks: list[contract.CheckReport] = field(default_factory=list)


Handler = Callable[[contract.Command], Awaitable[str | Done]]
Reply = Callable[[contract.CommandAck], Awaitable[object]]


class CommandFailed(Exception):  # noqa: N818 - a failed command is an outcome, not a bug
    """A command could not be carried out; the message goes into the ack's detail."""


class CommandHandler:
    """Dispatches commands to handlers by name and builds their acks."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self._settings = settings
        self._handlers: dict[str, Handler] = {
            "ping": self._ping,
            "set_telemetry_interval": self._set_telemetry_interval,
        }
        self._recent: OrderedDict[uuid.UUID, contract.CommandAck] = OrderedDict()
        self._running: dict[uuid.UUID, asyncio.Task[contract.CommandAck]] = {}
        self._replies: set[asyncio.Task[None]] = set()

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    def start(self, command: contract.Command, reply: Reply) -> None:
        """Handle ``command`` in its own task and ``reply`` with its ack; returns at once."""
        task = asyncio.create_task(self._answer(command, reply), name=f"command-{command.name}")
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def close(self) -> None:
        """Cancel the commands still running (the counter is stopping)."""
        tasks: list[asyncio.Task[None] | asyncio.Task[contract.CommandAck]] = [
            *self._replies,
            *self._running.values(),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _answer(self, command: contract.Command, reply: Reply) -> None:
        await reply(await self.handle(command))

    async def handle(self, command: contract.Command) -> contract.CommandAck:
        if (known := self._recent.get(command.request_id)) is not None:
            logger.info("repeated command answered again", extra={"command": command.name})
            return known
        if (running := self._running.get(command.request_id)) is not None:
            logger.info("repeated command still running", extra={"command": command.name})
            return await asyncio.shield(running)
        task = asyncio.ensure_future(self._run(command))
        self._running[command.request_id] = task
        try:
            ack = await asyncio.shield(task)
        finally:
            if task.done():
                self._running.pop(command.request_id, None)
        self._recent[command.request_id] = ack
        while len(self._recent) > REMEMBERED_ACKS:
            self._recent.popitem(last=False)
        return ack

    async def _run(self, command: contract.Command) -> contract.CommandAck:
        handler = self._handlers.get(command.name)
        if handler is None:
            ack = self._ack(command, ok=False, detail="commande inconnue")
        else:
            try:
                answer = await handler(command)
            except CommandFailed as exc:
                ack = self._ack(command, ok=False, detail=str(exc))
            except Exception:
                logger.exception("command failed", extra={"command": command.name})
                ack = self._ack(command, ok=False, detail="erreur interne du guichet")
            else:
                done = answer if isinstance(answer, Done) else Done(answer)
                ack = self._ack(command, ok=True, detail=done.detail, checks=done.checks)
        logger.info(
            "command handled",
            extra={"command": command.name, "request_id": str(command.request_id), "ok": ack.ok},
        )
        return ack

    @staticmethod
    def _ack(
        command: contract.Command,
        *,
        ok: bool,
        detail: str,
        checks: list[contract.CheckReport] | None = None,
    ) -> contract.CommandAck:
        return contract.CommandAck(
            request_id=command.request_id,
            at=contract.utcnow(),
            ok=ok,
            detail=detail[:1024],
            checks=checks or [],
        )

    async def _ping(self, command: contract.Command) -> str:
        return "pong"

    async def _set_telemetry_interval(self, command: contract.Command) -> str:
        seconds = command.args.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise CommandFailed("argument « seconds » entier attendu")
        try:
            self._settings.set_telemetry_interval(seconds, source="command")
        except ValueError as exc:
            raise CommandFailed(str(exc)) from None
        return f"télémétrie toutes les {seconds} s"


def simulated_press(
    button: SimulatedButton, describe: Callable[[], str] | None = None
) -> Callable[[contract.Command], Awaitable[str]]:
    """The demo's remote finger: ``press_button`` presses a simulated button (``held_s``
    seconds, a long press when at least the call's long-press time) and, given ``describe``,
    says what the counter is doing once the press is taken: after a call, the questionnaire
    takes presses as answers (issue 17). Only registered when the button is simulated, so a
    real counter has no such command."""

    async def press(command: contract.Command) -> str:
        held = command.args.get("held_s", 0.1)
        if not isinstance(held, int | float) or isinstance(held, bool) or not 0 <= held <= 10:
            raise CommandFailed("argument « held_s » : nombre de secondes entre 0 et 10")
        button.press()
        await asyncio.sleep(float(held))  # the finger stays on the button this long
        button.release(float(held))
        detail = f"bouton appuyé {held} s"
        if describe is None:
            return detail
        # The release reaches the call machine through the loop's queue (call_soon): one
        # turn of the loop and it has been handled.
        await asyncio.sleep(0)
        return f"{detail} ; guichet : {describe()}"

    return press


def simulated_skip(skip: Callable[[], bool], describe: Callable[[], str]) -> Handler:
    """The demo's ``skip_survey``: leave the questionnaire on screen (the answers given so
    far are sent, as when it is left unanswered). Registered with ``simulated_press``."""

    async def skip_survey(command: contract.Command) -> str:
        if not skip():
            raise CommandFailed(f"pas de questionnaire en cours ; guichet : {describe()}")
        return f"questionnaire passé ; guichet : {describe()}"

    return skip_survey
