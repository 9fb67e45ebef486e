"""Remote support's test call on the counter (the ``test_call`` command;
``docs/line-test.md``): a short call to the fleet server's automatic answerer, through the
call's own path — the signalling link, a ``CallPeer`` with this counter's camera,
microphone and loudspeaker, the ICE servers (TURN credentials included) the server gives
for this call — so that it measures what a citizen's call would get.

Nothing is shown: the peer has no screen, and the counter's state machine never hears of the
test call (its messages carry their own call id, which ``CallAgent`` hands here). Refused
while a citizen is at the counter; ended at once (hung up) if one presses the button
meanwhile, so that their call has the camera. The server measures and stores the figures;
its ``test_call_result`` becomes this command's ack.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.call.peer import CallPeer, MediaNegotiationError
from appliance.errors import ApplianceError
from appliance.fleet.commands import CommandFailed, Handler
from guichet import contract
from guichet import signalling as sig
from guichet.actions import TEST_CALL_LIMIT_S
from guichet.logs import call_id_var

if TYPE_CHECKING:
    from appliance.call.agent import CallAgent

logger = logging.getLogger(__name__)

WATCH_S = 0.25  # how often the test call looks whether a citizen pressed the button


class LineTest:
    """One test call, driven by the agent's messages for ``call_id``."""

    def __init__(self, agent: CallAgent, call_id: uuid.UUID) -> None:
        self._agent = agent
        self.call_id = call_id
        self._peer: CallPeer | None = None
        self._ice_servers: list[sig.IceServer] = []
        self._result: asyncio.Future[sig.TestCallResult] = asyncio.Future()
        self._tasks: set[asyncio.Task[None]] = set()

    def received(self, message: sig.ServerToCounter) -> None:
        """A server message for this test call (``CallAgent._on_message``)."""
        if isinstance(message, sig.CallAnswered):
            self._ice_servers = list(message.ice_servers)
        elif isinstance(message, sig.Description) and message.description.type == "offer":
            task = asyncio.create_task(self._answer(message.description.sdp), name="test:answer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(message, sig.TestCallResult) and not self._result.done():
            self._result.set_result(message)
        elif isinstance(message, sig.CallEnded) and not self._result.done():
            detail = "appel de test terminé par le serveur sans mesure"
            self._result.set_result(
                sig.TestCallResult(call_id=self.call_id, ok=False, detail=detail)
            )

    async def run(self, request_id: uuid.UUID, occupied: Callable[[], str | None]) -> str:
        """Ask for the test call, take part in it, return the server's result (French)."""
        self._agent.client.post(sig.TestCallRequest(call_id=self.call_id, request_id=request_id))
        try:
            async with asyncio.timeout(TEST_CALL_LIMIT_S):
                while not self._result.done():
                    if (doing := occupied()) is not None:
                        self._agent.client.post(
                            sig.Hangup(call_id=self.call_id, reason=sig.EndReason.CANCELLED)
                        )
                        raise CommandFailed(f"appel de test interrompu : {doing}")
                    await asyncio.wait([self._result], timeout=WATCH_S)
        except TimeoutError:
            self._agent.client.post(
                sig.Hangup(call_id=self.call_id, reason=sig.EndReason.CANCELLED)
            )
            raise CommandFailed(
                f"appel de test sans résultat du serveur en {TEST_CALL_LIMIT_S:.0f} s"
            ) from None
        finally:
            await self.close()
        result = self._result.result()
        if not result.ok:
            raise CommandFailed(f"appel de test : {result.detail}")
        return f"appel de test réussi : {result.detail}"

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        peer, self._peer = self._peer, None
        if peer is not None:
            await peer.close()

    async def _answer(self, offer_sdp: str) -> None:
        peer = self._peer
        if peer is None:
            peer = self._peer = CallPeer(
                self._agent.media,
                screen=None,  # nothing on screen: the counter stays ready for a citizen
                ice_servers=self._ice_servers or self._agent.welcome_ice_servers,
                on_connected=lambda: logger.info("test call media connected"),
                on_lost=lambda: logger.warning("test call media lost"),
                adaptation=self._agent.adaptation,
            )
        try:
            answer_sdp = await peer.answer(offer_sdp)
        except (MediaNegotiationError, ApplianceError) as exc:
            logger.warning("test call not answered: %s", exc)
            self._agent.client.post(sig.Hangup(call_id=self.call_id, reason=sig.EndReason.FAILED))
            if not self._result.done():
                self._result.set_result(
                    sig.TestCallResult(
                        call_id=self.call_id, ok=False, detail=f"média du guichet : {exc}"
                    )
                )
            return
        description = sig.SessionDescription(type="answer", sdp=answer_sdp)
        self._agent.client.post(sig.Description(call_id=self.call_id, description=description))


def line_test_handler(agent: CallAgent) -> Handler:
    """The ``test_call`` command's handler for this counter (``RemoteActions`` refuses it
    first while a citizen is there)."""

    async def test_call(command: contract.Command) -> str:
        if not agent.machine.link_up:
            raise CommandFailed("pas de liaison d'appel avec le serveur")
        if (doing := agent.occupied()) is not None:
            raise CommandFailed(f"refusé : un usager est au guichet ({doing})")
        if agent.line_test is not None:
            raise CommandFailed("un appel de test est déjà en cours")
        test = agent.line_test = LineTest(agent, uuid.uuid4())
        token = call_id_var.set(str(test.call_id))
        try:
            logger.info("test call asked by the fleet")
            return await test.run(command.request_id, agent.occupied)
        finally:
            agent.line_test = None
            call_id_var.reset(token)

    return test_call
