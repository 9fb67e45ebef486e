"""The call's signalling contract: WebSocket JSON messages between counters, agents and the
fleet server. Both sides import this module; golden fixtures pin each message.

Endpoints (on the fleet server):
- ``/ws/counter``: a counter, authenticated by ``Authorization: Bearer <call token>``;
- ``/ws/agent``: an agent's browser, authenticated by its session cookie (role "agent").

Who offers: the agent's browser creates the WebRTC offer when it answers a call; the counter
(aiortc) answers. The counter's answer is sent once its gathering is complete (aiortc does
not trickle). The browser's offer goes at once, without its candidates, which follow one
``candidate`` message each, then one whose ``candidate`` is None (end of candidates): the
counter adds them to its connection as they come (issue 16: the browser's gathering was
~120 ms on the set-up's path). Only with a counter that said it takes them
(``call_request``'s ``trickle_ice``, passed on in ``call_taken``); an older counter gets
complete offers, as before. An ICE restart is a new offer from the browser, its candidates
named by the new offer's ``ufrag``.

A test call (remote support's ``test_call`` action, ``docs/line-test.md``) uses the same
link: the counter sends ``test_call_request`` naming the action's request id; the server's
automatic answerer sends ``call_answered`` (this test's ICE servers) and its offer as an
agent's browser would, measures, and ends with ``test_call_result``.

Every message is a JSON object with a ``type``; unknown types are refused with an ``error``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from guichet.errors import SignallingError as SignallingError  # re-exported
from guichet.messages import parse_json

MAX_MESSAGE_BYTES = 256 * 1024  # an SDP with all candidates is ~10 KB
RESUME_WINDOW_S = 30  # a call whose counter link dropped is kept this long for a resume
# An ICE candidate line as browsers give it (RFC 8839 section 5.1): foundation, component,
# transport, priority, address (IPv4, IPv6 or an mDNS name), port, type, then extensions
# (raddr, rport, generation, ufrag, network-id…) in printable ASCII. A Chromium candidate
# is ~150 characters; anything else is refused before it reaches a counter.
_CANDIDATE_RE = re.compile(
    r"candidate:[A-Za-z0-9+/]{1,32} [0-9]{1,3} (?:udp|UDP|tcp|TCP) [0-9]{1,10}"
    r" [0-9A-Za-z.:_-]{1,253} [0-9]{1,5} typ (?:host|srflx|prflx|relay)(?: [!-~]+)*"
)
CANDIDATE_MAX_CHARS = 512
# An ICE username fragment (RFC 8839 section 5.4: 4 to 256 ice-chars).
UFRAG_PATTERN = r"^[A-Za-z0-9+/]{4,256}$"


T = TypeVar("T")


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SessionDescription(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Literal["offer", "answer"]
    sdp: str = Field(max_length=200_000)


class IceCandidate(BaseModel):
    """One ICE candidate as the browser's ``RTCIceCandidate`` gives it; the m-line it belongs
    to by ``sdp_mid`` or ``sdp_mline_index`` (at least one)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    candidate: str = Field(max_length=CANDIDATE_MAX_CHARS)
    sdp_mid: str | None = Field(default=None, min_length=1, max_length=32)
    sdp_mline_index: int | None = Field(default=None, ge=0, le=63)

    @field_validator("candidate")
    @classmethod
    def _is_a_candidate_line(cls, line: str) -> str:
        if _CANDIDATE_RE.fullmatch(line) is None:
            raise ValueError("not an ICE candidate line (RFC 8839: candidate:… typ …)")
        return line

    @model_validator(mode="after")
    def _names_its_m_line(self) -> IceCandidate:
        if self.sdp_mid is None and self.sdp_mline_index is None:
            raise ValueError("sdp_mid or sdp_mline_index is required")
        return self


class IceServer(BaseModel):
    """A STUN/TURN server for the call's peers: the long-lived ones (STUN) in ``welcome``;
    each call's own, with its time-limited TURN credentials, in ``call_taken`` (the agent)
    and ``call_answered`` (the counter)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class EndReason(StrEnum):
    """Why a call ended (``hangup`` and ``call_ended``; stored with the call)."""

    HANGUP_AGENT = "hangup_agent"  # the agent pressed "Raccrocher"
    HANGUP_COUNTER = "hangup_counter"  # long press on the counter's button
    MISSED = "missed"  # nobody answered in time
    FAILED = "failed"  # media or signalling lost and not restored within RESUME_WINDOW_S
    CANCELLED = "cancelled"  # the counter gave up while waiting
    SERVER_SHUTDOWN = "server_shutdown"


END_REASON_LABELS: dict[EndReason, str] = {  # French, as the dashboard and call log show them
    EndReason.HANGUP_AGENT: "Raccroché par l'agent",
    EndReason.HANGUP_COUNTER: "Raccroché au guichet",
    EndReason.MISSED: "Manqué (sans réponse)",
    EndReason.FAILED: "Coupé (liaison perdue)",
    EndReason.CANCELLED: "Abandonné avant réponse",
    EndReason.SERVER_SHUTDOWN: "Arrêt du serveur",
}


class CallState(StrEnum):
    """A call on the fleet server: waiting for an agent, connected to one, over."""

    QUEUED = "queued"
    CONNECTED = "connected"
    ENDED = "ended"


CALL_STATE_LABELS: dict[CallState, str] = {  # French
    CallState.QUEUED: "En attente",
    CallState.CONNECTED: "En communication",
    CallState.ENDED: "Terminé",
}


# --- counter → server -------------------------------------------------------------------


class CallRequest(_Msg):
    type: Literal["call_request"] = "call_request"
    call_id: uuid.UUID
    # The service the citizen chose when several were open; None: the server's routing decides.
    service: str | None = Field(default=None, max_length=64)
    # Added within v1 with a default: the counter takes the browser's candidates trickled
    # after its offer (``candidate``). An older counter sends none and gets complete offers.
    trickle_ice: bool = False


class Resume(_Msg):
    """After a dropped link: "I am still in this call"."""

    type: Literal["resume"] = "resume"
    call_id: uuid.UUID


class Hangup(_Msg):
    type: Literal["hangup"] = "hangup"
    call_id: uuid.UUID
    reason: EndReason


class Description(_Msg):
    """An SDP offer or answer, relayed as is to the other party of the call."""

    type: Literal["description"] = "description"
    call_id: uuid.UUID
    description: SessionDescription


class Candidate(_Msg):
    """One of the browser's ICE candidates for its offer named by ``ufrag`` (that offer's
    ``a=ice-ufrag``), relayed as is to the counter of the call; ``candidate`` None: the
    browser's gathering for that offer is complete (end of candidates). Sent only after the
    offer it belongs to, on the same link, so it never overtakes it."""

    type: Literal["candidate"] = "candidate"
    call_id: uuid.UUID
    ufrag: str = Field(pattern=UFRAG_PATTERN)
    candidate: IceCandidate | None


class MediaState(_Msg):
    """The counter's view of the media path, for the agent's quality indicator and the log."""

    type: Literal["media_state"] = "media_state"
    call_id: uuid.UUID
    state: Literal["connecting", "connected", "disconnected", "failed", "restored"]


class TestCallRequest(_Msg):
    """A test call the server asked for (the ``test_call`` action with this ``request_id``):
    answered by the server's automatic answerer, never by an agent. Added within v1: an older
    server answers it with an ``error`` (unknown type)."""

    __test__ = False  # not a pytest class
    type: Literal["test_call_request"] = "test_call_request"
    call_id: uuid.UUID
    request_id: uuid.UUID


# --- server → counter -------------------------------------------------------------------


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    device_id: str
    service: str | None  # which service the button calls now (None: nothing open)
    service_label: str | None
    ice_servers: list[IceServer] = Field(default_factory=list)
    ring_timeout_s: int


class CallQueued(_Msg):
    type: Literal["call_queued"] = "call_queued"
    call_id: uuid.UUID
    service: str
    service_label: str
    requested_at: datetime
    # Added within v1 with defaults (an older server sends neither; an older counter ignores
    # them): where the call stands in its service's queue (1: the next one answered) and a
    # rough wait in seconds (None: no agent connected, nobody can say). Sent again whenever
    # either changes while the call waits.
    position: int | None = Field(default=None, ge=1)
    estimated_wait_s: int | None = Field(default=None, ge=0)


class CallAnswered(_Msg):
    type: Literal["call_answered"] = "call_answered"
    call_id: uuid.UUID
    agent_label: str  # "Conseillère Caf", never a full name unless the agent chose it
    # This call's STUN/TURN servers, TURN credentials included (they expire: never kept
    # beyond the call). Added within v1 with a default: an older server sends none and the
    # counter uses ``welcome``'s; an older counter ignores them.
    ice_servers: list[IceServer] = Field(default_factory=list)


class CallEnded(_Msg):
    type: Literal["call_ended"] = "call_ended"
    call_id: uuid.UUID
    reason: EndReason


class TestCallResult(_Msg):
    """The end of a test call: measured and stored (``ok``), refused or failed; ``detail``
    says which in French (the counter puts it in the action's ack)."""

    __test__ = False  # not a pytest class
    type: Literal["test_call_result"] = "test_call_result"
    call_id: uuid.UUID
    ok: bool
    detail: str = Field(max_length=512)


class Error(_Msg):
    type: Literal["error"] = "error"
    code: str
    message: str  # French, may be shown to a person


# --- agent → server ---------------------------------------------------------------------


class Answer(_Msg):
    type: Literal["answer"] = "answer"
    call_id: uuid.UUID


# --- server → agent ---------------------------------------------------------------------


class QueuedCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    call_id: uuid.UUID
    device_id: str
    site: str
    counter_name: str
    requested_at: datetime


class Queue(_Msg):
    """The waiting calls of the agent's service; sent whenever it changes."""

    type: Literal["queue"] = "queue"
    service: str
    calls: list[QueuedCall]
    missed_today: int = 0


class CallTaken(_Msg):
    """Sent to the agent who answered (``by_me``) and to the others (who see it taken)."""

    type: Literal["call_taken"] = "call_taken"
    call_id: uuid.UUID
    by_me: bool
    site: str
    counter_name: str
    ice_servers: list[IceServer] = Field(default_factory=list)
    # Added within v1 with a default: this call's counter takes trickled candidates
    # (``call_request``'s ``trickle_ice``); an older console waits for its gathering anyway.
    trickle_ice: bool = False


CounterToServer = Annotated[
    CallRequest | Resume | Hangup | Description | MediaState | TestCallRequest,
    Field(discriminator="type"),
]
ServerToCounter = Annotated[
    Welcome
    | CallQueued
    | CallAnswered
    | CallEnded
    | Description
    | Candidate
    | Error
    | TestCallResult,
    Field(discriminator="type"),
]
AgentToServer = Annotated[Answer | Hangup | Description | Candidate, Field(discriminator="type")]
ServerToAgent = Annotated[
    Queue | CallTaken | CallEnded | Description | MediaState | Error,
    Field(discriminator="type"),
]

_COUNTER_IN: TypeAdapter[CounterToServer] = TypeAdapter(CounterToServer)
_COUNTER_OUT: TypeAdapter[ServerToCounter] = TypeAdapter(ServerToCounter)
_AGENT_IN: TypeAdapter[AgentToServer] = TypeAdapter(AgentToServer)
_AGENT_OUT: TypeAdapter[ServerToAgent] = TypeAdapter(ServerToAgent)


def _parse(adapter: TypeAdapter[T], raw: str | bytes) -> T:
    return parse_json(adapter, raw, max_bytes=MAX_MESSAGE_BYTES, error=SignallingError)


def parse_from_counter(raw: str | bytes) -> CounterToServer:
    return _parse(_COUNTER_IN, raw)


def parse_to_counter(raw: str | bytes) -> ServerToCounter:
    return _parse(_COUNTER_OUT, raw)


def parse_from_agent(raw: str | bytes) -> AgentToServer:
    return _parse(_AGENT_IN, raw)


def parse_to_agent(raw: str | bytes) -> ServerToAgent:
    return _parse(_AGENT_OUT, raw)


def dump(message: _Msg) -> str:
    return message.model_dump_json()
