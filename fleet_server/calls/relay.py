"""What the server relays between the two ends of a connected call: SDP descriptions both
ways (held until the other end is attached, e.g. during a resume) and the counter's media
state. SDP is relayed as is and never logged at info level."""

from __future__ import annotations

import logging

from fleet_server.calls.parties import AgentSession, Call, CounterSession, error
from guichet import signalling as sig
from guichet.signalling import CallState

logger = logging.getLogger(__name__)


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
    else:
        call.counter.link.send(message)


def media_state(call: Call | None, counter: CounterSession, message: sig.MediaState) -> None:
    """The counter's media state (e.g. its camera stopped), to the agent."""
    if call is None or call.counter is not counter:
        return
    logger.info("counter media state", extra={"media_state": message.state})
    if call.agent is not None:
        call.agent.link.send(message)
