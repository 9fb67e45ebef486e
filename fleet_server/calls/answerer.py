"""The server's automatic answerer for test calls (remote support's ``test_call`` action;
``docs/line-test.md``).

A counter that received the ``test_call`` command sends ``test_call_request`` on its own
signalling link, naming the command's request id. The answerer takes it only for a test call
the server itself asked for: a ``test_call`` command row of **this** counter, not yet
answered nor expired, never claimed before (one test call per action). Anything else is
refused with a ``test_call_result`` saying why, logged, and costs no media.

A claimed test call goes as an agent's would: ``call_answered`` with the counter's own ICE
servers for this call (TURN credentials included, ``calls/turn.py``), then our offer
(``answerer_peer.py``); the counter answers through its normal call path. Once the media
connect, the answerer measures for ``measure_s``, stores the figures on the action's row
(``line_figures.py``) and then sends ``test_call_result``: the counter's ack, which ends
the action, comes after the figures are committed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from fleet_server.calls.line_figures import Sample, describe, figures
from fleet_server.calls.parties import CounterSession, call_context
from fleet_server.calls.store import CallJournal
from fleet_server.calls.turn import Party
from fleet_server.models import CommandRecord
from guichet import signalling as sig
from guichet.actions import Action
from guichet.contract import utcnow

if TYPE_CHECKING:
    from fleet_server.calls.answerer_peer import AnswererPeer

logger = logging.getLogger(__name__)

ANSWERER_LABEL = "Test de la ligne"  # the ``agent_label`` of a test call's ``call_answered``
CONNECT_S = 20.0  # offer → media connected; ICE through a TURN relay takes a few seconds
# Each test call encodes and decodes video in the server process: a whole site asked at once
# waits its turn (the others are refused, saying so) rather than starving the web server.
MAX_TEST_CALLS = 3
# The round trip comes from the counter's RTCP receiver reports on our sender reports, each
# sent every 0.5–1.5 s (aiortc): a short window on a busy machine or a lossy line can end
# before the first one. The window then stretches, sampling every RTT_POLL_S, up to
# RTT_GRACE_S more; past that the figure is stored as not measured (« — »).
RTT_GRACE_S = 8.0
RTT_POLL_S = 0.25
IceServersFor = Callable[[uuid.UUID, Party], list[sig.IceServer]]


@dataclass(eq=False)
class _Test:
    call_id: uuid.UUID
    request_id: uuid.UUID
    counter: CounterSession
    answer: asyncio.Future[str] = field(default_factory=asyncio.Future)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class TestAnswerer:
    """The test calls under way on this server process, at most one per counter."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        journal: CallJournal,
        *,
        ice_servers_for: IceServersFor,
        measure_s: float,
        connect_s: float = CONNECT_S,
        max_tests: int = MAX_TEST_CALLS,
        errors: list[BaseException] | None = None,
    ) -> None:
        self._journal = journal
        self._ice_servers_for = ice_servers_for
        self.measure_s, self.connect_s, self.max_tests = measure_s, connect_s, max_tests
        self._tests: dict[uuid.UUID, _Test] = {}
        self._claimed: set[uuid.UUID] = set()  # request ids: a replayed request is refused
        self.errors = errors if errors is not None else []  # tests assert this stays empty

    def owns(self, call_id: uuid.UUID) -> bool:
        return call_id in self._tests

    def testing(self, device_id: str) -> bool:
        return any(t.counter.info.device_id == device_id for t in self._tests.values())

    async def request(
        self, counter: CounterSession, message: sig.TestCallRequest, *, in_call: bool
    ) -> None:
        device_id = counter.info.device_id
        refusal = None
        if message.call_id in self._tests or message.request_id in self._claimed:
            refusal = "refusé : cet appel de test a déjà eu lieu"
        elif in_call:
            refusal = "refusé : un appel est en cours sur ce guichet"
        elif self.testing(device_id):
            refusal = "refusé : un appel de test est déjà en cours sur ce guichet"
        elif len(self._tests) >= self.max_tests:
            refusal = (
                f"refusé : le serveur mène déjà {self.max_tests} appels de test ;"
                " réessayez dans une minute"
            )
        else:
            self._claimed.add(message.request_id)
            now = utcnow()
            if not await self._journal.run(claimable(message.request_id, device_id, now)):
                refusal = "refusé : aucun appel de test demandé par le serveur pour ce guichet"
        if refusal is not None:
            logger.warning(
                "test call refused",
                extra={"device_id": device_id, "request_id": str(message.request_id)},
            )
            counter.link.send(sig.TestCallResult(call_id=message.call_id, ok=False, detail=refusal))
            return
        test = _Test(message.call_id, message.request_id, counter)
        self._tests[test.call_id] = test
        test.task = asyncio.create_task(self._run(test), name="call:test-answerer")
        test.task.add_done_callback(self._done)

    def counter_message(self, counter: CounterSession, message: sig.CounterToServer) -> None:
        """The counter's answer to our offer, or its hang-up, for a test call it owns."""
        test = self._tests.get(message.call_id)
        if test is None or test.counter.info.device_id != counter.info.device_id:
            return
        if isinstance(message, sig.Description) and message.description.type == "answer":
            if not test.answer.done():
                test.answer.set_result(message.description.sdp)
        elif isinstance(message, sig.Hangup):
            test.hung_up.set()

    def counter_gone(self, counter: CounterSession) -> None:
        """The counter's link closed: its test call stops (its command times out)."""
        for test in list(self._tests.values()):
            if test.counter is counter and test.task is not None:
                test.task.cancel()

    async def stop(self) -> None:
        tasks = [t.task for t in self._tests.values() if t.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # --- one test call ---------------------------------------------------------------------

    async def _run(self, test: _Test) -> None:
        from fleet_server.calls.answerer_peer import AnswererPeer, LineTestFailedError

        with call_context(test.call_id):
            logger.info("test call answered", extra={"device_id": test.counter.info.device_id})
            peer = AnswererPeer(self._ice_servers_for(test.call_id, Party.AGENT))
            result: dict[str, float | None] | str | None
            try:
                result = await _unless_hung_up(test, self._measure(test, peer))
            except TimeoutError:
                result = f"la ligne ne s'est pas établie en {self.connect_s:.0f} s"
            except LineTestFailedError as exc:
                result = str(exc)
            finally:
                await peer.close()
                self._tests.pop(test.call_id, None)
            if result is None:
                logger.info("test call hung up by the counter")
                return  # the counter says why in its own ack
            ok, detail = (False, result) if isinstance(result, str) else (True, describe(result))
            logger.info("test call over", extra={"ok": ok})
            test.counter.link.send(sig.TestCallResult(call_id=test.call_id, ok=ok, detail=detail))

    async def _measure(self, test: _Test, peer: AnswererPeer) -> dict[str, float | None]:
        async with asyncio.timeout(self.connect_s):
            counter_servers = self._ice_servers_for(test.call_id, Party.COUNTER)
            test.counter.link.send(
                sig.CallAnswered(
                    call_id=test.call_id, agent_label=ANSWERER_LABEL, ice_servers=counter_servers
                )
            )
            offer = sig.SessionDescription(type="offer", sdp=await peer.offer())
            test.counter.link.send(sig.Description(call_id=test.call_id, description=offer))
            await peer.accept(await test.answer)
            await peer.connected()
        measured = figures(*await measuring_window(peer.sample, self.measure_s))
        await self._journal.run(store_measurements(test.request_id, measured))
        return measured

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("test call answerer failed", exc_info=exc)
            self.errors.append(exc)


async def measuring_window(
    sample: Callable[[], Awaitable[Sample]], measure_s: float, rtt_grace_s: float = RTT_GRACE_S
) -> tuple[Sample, Sample]:
    """The two samples: ``measure_s`` apart, or longer if no round trip was known by then
    (at most ``rtt_grace_s`` longer)."""
    before = await sample()
    await asyncio.sleep(measure_s)
    after = await sample()
    grace_ends = after.at_s + rtt_grace_s
    while not after.rtt_s and after.at_s < grace_ends:  # no receiver report yet
        await asyncio.sleep(RTT_POLL_S)
        after = await sample()
    return before, after


async def _unless_hung_up(
    test: _Test, measuring: Coroutine[Any, Any, dict[str, float | None]]
) -> dict[str, float | None] | None:
    """The measurement, or None if the counter hangs up first (it stops at once)."""
    measure = asyncio.ensure_future(measuring)
    hangup = asyncio.ensure_future(test.hung_up.wait())
    try:
        await asyncio.wait({measure, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (measure, hangup):
            task.cancel()
        await asyncio.wait({measure, hangup})
    if not measure.done() or measure.cancelled():
        return None
    return measure.result()


# --- database (each runs inside the journal's transaction) ---------------------------------


def claimable(request_id: uuid.UUID, device_id: str, now: datetime) -> Callable[[Session], bool]:
    """Whether ``request_id`` is a ``test_call`` the server sent this counter and still waits
    for: not answered, not expired, not measured."""

    def op(session: Session) -> bool:
        record = session.get(CommandRecord, request_id)
        return (
            record is not None
            and record.device_id == device_id
            and record.name == Action.TEST_CALL.value
            and record.acked_at is None
            and (record.expires_at is None or now < record.expires_at)
            and record.measurements is None
        )

    return op


def store_measurements(
    request_id: uuid.UUID, measured: dict[str, float | None]
) -> Callable[[Session], None]:
    def op(session: Session) -> None:
        record = session.get(CommandRecord, request_id)
        if record is not None:
            record.measurements = dict(measured)

    return op
