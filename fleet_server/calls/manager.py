"""Call control: one ``CallManager`` per web process, created by ``create_app``.

A call goes requested → routed (``fleet_server.scheme.routing``: appointment, open slot or
permanence, the citizen's choice) → queued for a service → offered to that service's
connected agents → answered by exactly one → connected → ended (by either side, or by
failure). A call with preferred agents (the booked agent of an appointment, the agents on
duty of a permanence) is offered only to them for the service's ``fallback_s``, then to all
the service's agents: each agent's queue lists only the calls offered to them. Every handler
changes the state synchronously before its first ``await``, so two agents answering at the
same moment cannot both win: the event loop runs one handler's check-and-set at a time.

The manager knows connections only as ``Link``s (non-blocking ``send`` and ``close``) so the
WebSocket layer stays thin and tests can drive it with fakes. Database writes go through the
``CallJournal`` in order; timers (ring, fallback, resume windows) through ``CallTimers``
(``calls_timers.py``). SDP is relayed as is and never logged at info level.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from fleet_server.calls import relay, store
from fleet_server.calls.answerer import TestAnswerer
from fleet_server.calls.parties import (
    RESERVED_TEXT,
    AgentSession,
    Call,
    CounterSession,
    answered_message,
    call_context,
    error,
    queue_message,
    queued_message,
    standing,
    taken_message,
)
from fleet_server.calls.store import CallJournal, ServiceInfo
from fleet_server.calls.timers import CallTimers
from fleet_server.calls.turn import Party, TurnIssuer
from fleet_server.scheme.routing import Refused
from fleet_server.scheme.schedules import ScheduleOptions
from guichet import signalling as sig
from guichet.contract import utcnow
from guichet.signalling import CallState, EndReason

logger = logging.getLogger(__name__)

CLOSE_REPLACED = 4409  # a newer connection of the same counter took over
ENDED_REMEMBERED = 1000  # ended calls kept in memory to answer a late resume
COUNTER_HANGUP_REASONS = frozenset(
    {EndReason.HANGUP_COUNTER, EndReason.CANCELLED, EndReason.FAILED}
)


class CallManager:
    def __init__(
        self,
        journal: CallJournal,
        *,
        ring_timeout_s: float,
        resume_window_s: float,
        ice_servers: list[sig.IceServer] | None = None,
        turn: TurnIssuer | None = None,
        schedule_options: ScheduleOptions | None = None,
        clock: Callable[[], datetime] = utcnow,
        test_call_measure_s: float = 10.0,
    ) -> None:
        self._journal = journal
        self.schedule_options = schedule_options
        self.ring_timeout_s, self.resume_window_s = ring_timeout_s, resume_window_s
        self.ice_servers = list(ice_servers or [])  # STUN: in welcome and every call
        self._turn = turn  # a TURN server: each call's parties get credentials of their own
        self._clock = clock
        self._calls: dict[uuid.UUID, Call] = {}
        self._call_of_device: dict[str, uuid.UUID] = {}
        self._ended: dict[uuid.UUID, tuple[str, sig.EndReason]] = {}
        self._counters: dict[str, CounterSession] = {}
        self._agents: set[AgentSession] = set()
        self._timers = CallTimers(self.end)
        self.task_errors = self._timers.errors  # tests assert this stays empty
        # Remote support's test calls: answered by the server itself (docs/line-test.md).
        self.test_calls = TestAnswerer(
            journal,
            ice_servers_for=self._ice_servers_for_id,
            measure_s=test_call_measure_s,
            errors=self.task_errors,
        )

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        closed = await self._journal.run(
            store.end_unfinished(EndReason.SERVER_SHUTDOWN, self._clock())
        )
        if closed:
            logger.warning("calls left open by a previous run closed", extra={"count": closed})

    async def stop(self) -> None:
        for call in list(self._calls.values()):
            await self.end(call, EndReason.SERVER_SHUTDOWN)
        await self.test_calls.stop()
        await self._timers.stop()

    def active_calls(self) -> list[Call]:
        return list(self._calls.values())

    def in_call(self, device_id: str) -> bool:
        """Whether this counter has a call under way (queued or connected, or a test call)
        on this server."""
        return self._call_of(device_id) is not None or self.test_calls.testing(device_id)

    async def settled(self) -> None:
        """Return once every database write submitted so far is committed."""
        await self._journal.run(lambda _session: None)

    # --- counters -------------------------------------------------------------------------

    async def counter_connected(self, counter: CounterSession) -> None:
        device_id = counter.info.device_id
        previous = self._counters.get(device_id)
        self._counters[device_id] = counter
        if previous is not None:
            self._detach_counter(previous)
            previous.link.close(CLOSE_REPLACED, "remplacée par une nouvelle connexion")
        await self.send_welcome(device_id)

    async def send_welcome(self, device_id: str) -> None:
        """Tell the counter (again) which service its button calls now (None: none or several
        open): at connection and after the administrator changes it."""
        counter = self._counters.get(device_id)
        if counter is None:
            return
        now = self._clock()
        service = await self._journal.run(store.service_now(device_id, now, self.schedule_options))
        counter.link.send(
            sig.Welcome(
                device_id=device_id,
                service=service.code if service else None,
                service_label=service.label if service else None,
                ice_servers=self.ice_servers,
                ring_timeout_s=round(self.ring_timeout_s),
            )
        )

    def drop_counter(self, device_id: str, code: int, reason: str) -> bool:
        """Close a counter's signalling connection (revocation); False if not connected."""
        counter = self._counters.get(device_id)
        if counter is None:
            return False
        counter.link.close(code, reason)
        return True

    def drop_agent(self, user_id: int, code: int, reason: str) -> int:
        """Close every live console of this user (deactivated, re-scoped, new password): the
        queue stops reaching them at once. How many were closed."""
        mine = [agent for agent in self._agents if agent.user_id == user_id]
        for agent in mine:
            agent.link.close(code, reason)
        return len(mine)

    async def counter_disconnected(self, counter: CounterSession) -> None:
        if self._counters.get(counter.info.device_id) is counter:
            del self._counters[counter.info.device_id]
        self._detach_counter(counter)
        self.test_calls.counter_gone(counter)

    def _detach_counter(self, counter: CounterSession) -> None:
        call = self._call_of(counter.info.device_id)
        if call is None or call.counter is not counter:
            return
        call.counter = None
        with call_context(call.id):
            logger.info("counter link lost; waiting for a resume")
            self._timers.end_after(call, "counter_lost", self.resume_window_s, EndReason.FAILED)

    async def counter_message(self, counter: CounterSession, message: sig.CounterToServer) -> None:
        with call_context(message.call_id):
            if self.test_calls.owns(message.call_id):  # a test call's answer or hang-up
                self.test_calls.counter_message(counter, message)
                return
            match message:
                case sig.TestCallRequest():
                    in_call = self._call_of(counter.info.device_id) is not None
                    await self.test_calls.request(counter, message, in_call=in_call)
                case sig.CallRequest():
                    await self._request(counter, message)
                case sig.Resume():
                    self._counter_resume(counter, message.call_id)
                case sig.Hangup():
                    await self._counter_hangup(counter, message)
                case sig.Description():
                    self._relay_from_counter(counter, message)
                case sig.MediaState():
                    self._media_state(counter, message)

    async def _request(self, counter: CounterSession, request: sig.CallRequest) -> None:
        device_id, call_id, requested = counter.info.device_id, request.call_id, request.service
        if call_id in self._calls or call_id in self._ended:
            self._counter_resume(counter, call_id)
            return
        if self._call_of(device_id) is not None:
            counter.link.send(error("call_in_progress", "Un appel est déjà en cours."))
            return
        now = self._clock()
        routed = await self._journal.run(
            store.route_call(device_id, now, requested, self.schedule_options)
        )
        if isinstance(routed, Refused):
            logger.info("call refused", extra={"device_id": device_id, "code": routed.code})
            counter.link.send(error(routed.code, routed.message))
            return
        if self._call_of(device_id) is not None or call_id in self._calls:  # raced meanwhile
            counter.link.send(error("call_in_progress", "Un appel est déjà en cours."))
            return
        service = ServiceInfo(routed.service, routed.label)
        call = Call(call_id, counter.info, service, self._clock(), counter)
        call.preferred_agents = frozenset(routed.preferred_agents)
        call.appointment_id = routed.appointment_id
        call.trickle_ice = request.trickle_ice
        call.exclusive = bool(call.preferred_agents) and routed.fallback_s > 0
        self._calls[call_id] = call
        self._call_of_device[device_id] = call_id
        self._timers.end_after(call, "ring", self.ring_timeout_s, EndReason.MISSED)
        if call.exclusive:
            self._timers.after(call, "fallback", routed.fallback_s, self._offer_to_all)
        counter.link.send(queued_message(call, self._standing(call)))
        logger.info(
            "call queued",
            extra={
                "device_id": device_id,
                "service": service.code,
                "appointment_id": routed.appointment_id,
                "preferred_agents": sorted(call.preferred_agents),
            },
        )
        record = store.call_requested(call_id, counter.info, service.code, call.requested_at)
        await self._journal.run(record)
        await self.publish_queue(service.code)

    def _counter_resume(self, counter: CounterSession, call_id: uuid.UUID) -> None:
        call = self._calls.get(call_id)
        if call is None:
            _, reason = self._ended.get(call_id, ("", EndReason.FAILED))
            counter.link.send(sig.CallEnded(call_id=call_id, reason=reason))
            return
        if call.counter_info.device_id != counter.info.device_id:
            counter.link.send(error("not_your_call", "Cet appel n'est pas celui du guichet."))
            return
        call.counter = counter
        self._timers.cancel(call, "counter_lost")
        logger.info("counter resumed the call", extra={"state": call.state})
        if call.state is CallState.QUEUED:
            counter.link.send(queued_message(call, self._standing(call)))
            return
        counter.link.send(answered_message(call))
        relay.flush_to_counter(call, counter)

    async def _counter_hangup(self, counter: CounterSession, message: sig.Hangup) -> None:
        call = self._calls.get(message.call_id)
        if call is None or call.counter_info.device_id != counter.info.device_id:
            counter.link.send(sig.CallEnded(call_id=message.call_id, reason=EndReason.CANCELLED))
            return
        if call.state is CallState.QUEUED:
            reason: EndReason = EndReason.CANCELLED
        elif message.reason in COUNTER_HANGUP_REASONS:
            reason = message.reason
        else:
            reason = EndReason.HANGUP_COUNTER
        await self.end(call, reason)

    def _relay_from_counter(self, counter: CounterSession, message: sig.Description) -> None:
        relay.to_agent(self._calls.get(message.call_id), counter, message)

    def _media_state(self, counter: CounterSession, message: sig.MediaState) -> None:
        relay.media_state(self._calls.get(message.call_id), counter, message)

    # --- agents ---------------------------------------------------------------------------

    async def agent_connected(self, agent: AgentSession) -> None:
        self._agents.add(agent)
        for call in self._calls.values():
            mine = call.agent_user_id == agent.user_id and agent.can_answer
            if call.state is CallState.CONNECTED and call.agent is None and mine:
                self._reattach_agent(call, agent)
        await self.publish_queue(agent.service, only=agent)

    def _reattach_agent(self, call: Call, agent: AgentSession) -> None:
        with call_context(call.id):
            call.agent = agent
            self._timers.cancel(call, "agent_lost")
            logger.info("agent back in the call")
            agent.link.send(self._taken(call, by_me=True))
            if call.pending_to_agent is not None:
                agent.link.send(call.pending_to_agent)
                call.pending_to_agent = None

    async def agent_disconnected(self, agent: AgentSession) -> None:
        self._agents.discard(agent)
        for call in self._calls.values():
            if call.agent is agent:
                call.agent = None
                with call_context(call.id):
                    logger.info("agent link lost; waiting for a resume")
                    self._timers.end_after(
                        call, "agent_lost", self.resume_window_s, EndReason.FAILED
                    )

    async def agent_message(self, agent: AgentSession, message: sig.AgentToServer) -> None:
        with call_context(message.call_id):
            match message:
                case sig.Answer():
                    await self._answer(agent, message.call_id)
                case sig.Hangup():
                    call = self._calls.get(message.call_id)
                    if call is None or call.agent is not agent:
                        agent.link.send(
                            sig.CallEnded(call_id=message.call_id, reason=EndReason.FAILED)
                        )
                        return
                    await self.end(
                        call,
                        EndReason.FAILED
                        if message.reason == EndReason.FAILED
                        else EndReason.HANGUP_AGENT,
                    )
                case sig.Description():
                    self._relay_from_agent(agent, message)
                case sig.Candidate():
                    relay.candidate_to_counter(self._calls.get(message.call_id), agent, message)

    async def _answer(self, agent: AgentSession, call_id: uuid.UUID) -> None:
        call = self._calls.get(call_id)
        if not agent.can_answer:
            agent.link.send(error("watch_only", "Vous observez ce service sans y répondre."))
        elif call is None or call.service.code != agent.service:
            agent.link.send(error("unknown_call", "Cet appel n'est plus en attente."))
        elif call.state is not CallState.QUEUED:
            agent.link.send(self._taken(call, by_me=call.agent is agent))
        elif not call.offered_to(agent):
            agent.link.send(error("reserved", RESERVED_TEXT))
        elif any(c.agent is agent for c in self._calls.values()):
            agent.link.send(error("busy", "Terminez d'abord l'appel en cours."))
        else:
            await self._take(call, agent)

    async def _take(self, call: Call, agent: AgentSession) -> None:
        call.state, call.agent, call.agent_user_id = CallState.CONNECTED, agent, agent.user_id
        self._timers.cancel(call, "ring")
        self._timers.cancel(call, "fallback")
        answered_at = self._clock()
        call.counter_ice_servers = self._ice_servers_for(call, Party.COUNTER)
        call.agent_ice_servers = self._ice_servers_for(call, Party.AGENT)
        logger.info("call answered", extra={"agent_user_id": agent.user_id})
        agent.link.send(self._taken(call, by_me=True))
        for other in self._agents_of(call.service.code):
            if other is not agent and call.offered_to(other):
                other.link.send(self._taken(call, by_me=False))
        if call.counter is not None:
            call.counter.link.send(answered_message(call))
        await self._journal.run(store.call_answered(call.id, agent.user_id, answered_at))
        await self.publish_queue(call.service.code)

    def _relay_from_agent(self, agent: AgentSession, message: sig.Description) -> None:
        relay.to_counter(self._calls.get(message.call_id), agent, message)

    # --- shared ---------------------------------------------------------------------------

    async def end(self, call: Call, reason: EndReason) -> None:
        if call.state is CallState.ENDED:
            return
        was_queued = call.state is CallState.QUEUED
        call.state = CallState.ENDED
        self._timers.cancel_all(call)
        self._calls.pop(call.id, None)
        if self._call_of_device.get(call.counter_info.device_id) == call.id:
            del self._call_of_device[call.counter_info.device_id]
        self._remember_ended(call.id, call.counter_info.device_id, reason)
        with call_context(call.id):
            logger.info("call ended", extra={"reason": reason})
        ended = sig.CallEnded(call_id=call.id, reason=reason)
        for party in (call.counter, call.agent):
            if party is not None:
                party.link.send(ended)
        await self._journal.run(store.call_ended(call.id, reason, self._clock()))
        if was_queued or reason == EndReason.MISSED:
            await self.publish_queue(call.service.code)

    async def publish_queue(self, service: str, *, only: AgentSession | None = None) -> None:
        """Send the service's waiting calls to its agents (or to one of them), each agent
        seeing only the calls offered to them."""
        missed = await self._journal.run(store.missed_today(service, self._clock()))
        waiting = [
            c
            for c in self._calls.values()
            if c.state is CallState.QUEUED and c.service.code == service
        ]
        for agent in [only] if only is not None else self._agents_of(service):
            mine = [c for c in waiting if c.offered_to(agent)]
            agent.link.send(queue_message(service, mine, missed))
        for call in waiting:  # the counters whose place in the queue changed learn it
            told = call.told_standing
            if call.counter is not None and told is not None and self._standing(call) != told:
                call.counter.link.send(queued_message(call, call.told_standing))

    def _standing(self, call: Call) -> tuple[int, int | None]:
        """The call's place in its service's queue and estimated wait, remembered as told."""
        waiting = [
            c
            for c in self._calls.values()
            if c.state is CallState.QUEUED and c.service.code == call.service.code
        ]
        agents = sum(1 for a in self._agents_of(call.service.code) if a.can_answer)
        call.told_standing = standing(call, waiting, agents)
        return call.told_standing

    def _agents_of(self, service: str) -> list[AgentSession]:
        return [a for a in self._agents if a.service == service]

    def _call_of(self, device_id: str) -> Call | None:
        call_id = self._call_of_device.get(device_id)
        return self._calls.get(call_id) if call_id is not None else None

    def _taken(self, call: Call, *, by_me: bool) -> sig.CallTaken:
        return taken_message(call, by_me=by_me)

    def _ice_servers_for(self, call: Call, party: Party) -> list[sig.IceServer]:
        return self._ice_servers_for_id(call.id, party)

    def _ice_servers_for_id(self, call_id: uuid.UUID, party: Party) -> list[sig.IceServer]:
        """The STUN servers and, with a TURN server, credentials for this party only."""
        if self._turn is None:
            return list(self.ice_servers)
        now_s = self._clock().timestamp()
        return [*self.ice_servers, self._turn.server(call_id, party, now_s)]

    def _remember_ended(self, call_id: uuid.UUID, device_id: str, reason: EndReason) -> None:
        self._ended[call_id] = (device_id, reason)
        while len(self._ended) > ENDED_REMEMBERED:
            del self._ended[next(iter(self._ended))]

    async def _offer_to_all(self, call: Call) -> None:
        """The preferred agents' exclusive window is over: every agent of the service sees
        the call (their consoles ring)."""
        call.exclusive = False
        if call.state is CallState.QUEUED:
            with call_context(call.id):
                logger.info("call now offered to all the service's agents")
            await self.publish_queue(call.service.code)
