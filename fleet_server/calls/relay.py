"""What the server relays between the two ends of a connected call: SDP descriptions both
ways (held until the other end is attached, e.g. during a resume), the browser's trickled
ICE candidates to the counter (held with its offer) and the counter's media state. SDP and
candidates are relayed as is and never logged at info level (they carry addresses)."""

from __future__ import annotations

import logging

from fleet_server.calls.parties import AgentSession, Call, CounterSession, error
from guichet import signalling as sig
from guichet.signalling import CallState

logger = logging.getLogger(__name__)

# Candidates held for a detached counter: a browser gathers a handful per offer (host, one
# server-reflexive, a relay or two per interface); beyond this an agent's page misbehaves.
PENDING_CANDIDATES_MAX = 64


def to_agent(call: Call | None, counter: CounterSession, message: sig.Description) -> None:
    """The counter's description, to the agent of its connected call."""
    if call is None or call.counter is not counter or call.state is not CallState.CONNECTED:
        counter.link.send(error("not_in_call", "Aucun appel en cours avec ce numéro."))
        return
    logger.info("description relayed to the agent", extra={"sdp": message.description.type})
    logger.debug("counter SDP: %s", message.description.sdp)
    if call.agent is None:
        call.pending_to_agent = message
    else:
        call.agent.link.send(message)


def to_counter(call: Call | None, agent: AgentSession, message: sig.Description) -> None:
    """The agent's description, to the counter of the call the agent holds."""
    if call is None or call.agent is not agent:
        agent.link.send(error("not_your_call", "Cet appel n'est pas le vôtre."))
        return
    logger.info("description relayed to the counter", extra={"sdp": message.description.type})
    logger.debug("agent SDP: %s", message.description.sdp)
    if call.counter is None:
        call.pending_to_counter = message
        call.pending_candidates = []  # the previous offer's, if any: stale now
    else:
        call.counter.link.send(message)


def candidate_to_counter(call: Call | None, agent: AgentSession, message: sig.Candidate) -> None:
    """The agent's trickled candidate, to the counter of the call the agent holds. One for
    another call (ended meanwhile, or not this agent's) is dropped without an error: it
    may just have crossed the call's end, and the console has nothing to show for it."""
    if call is None or call.agent is not agent or call.state is not CallState.CONNECTED:
        logger.info("candidate for a call that is not the agent's ignored")
        return
    logger.debug("agent candidate: %s", message.candidate)
    if call.counter is not None:
        call.counter.link.send(message)
    elif len(call.pending_candidates) < PENDING_CANDIDATES_MAX:
        call.pending_candidates.append(message)
    else:
        logger.warning("too many candidates held for the counter; dropped")


def flush_to_counter(call: Call, counter: CounterSession) -> None:
    """What was held for the counter while it was away: the last offer, its candidates."""
    if call.pending_to_counter is not None:
        counter.link.send(call.pending_to_counter)
        call.pending_to_counter = None
    for candidate in call.pending_candidates:
        counter.link.send(candidate)
    call.pending_candidates = []


def media_state(call: Call | None, counter: CounterSession, message: sig.MediaState) -> None:
    """The counter's media state (e.g. its camera stopped), to the agent."""
    if call is None or call.counter is not counter:
        return
    logger.info("counter media state", extra={"media_state": message.state})
    if call.agent is not None:
        call.agent.link.send(message)
