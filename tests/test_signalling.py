"""The signalling contract: golden fixtures pin every message, in each direction it travels."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from guichet import signalling as sig

FIXTURES = Path(__file__).parent / "fixtures" / "signalling"
PARSERS: dict[str, Callable[[str | bytes], Any]] = {
    "counter→server": sig.parse_from_counter,
    "server→counter": sig.parse_to_counter,
    "agent→server": sig.parse_from_agent,
    "server→agent": sig.parse_to_agent,
}
UNIONS = {
    "counter→server": sig.CounterToServer,
    "server→counter": sig.ServerToCounter,
    "agent→server": sig.AgentToServer,
    "server→agent": sig.ServerToAgent,
}


def _models(union: Any) -> list[type[BaseModel]]:
    inner = typing.get_args(union)[0]  # Annotated[Union[...], Field(...)]
    return list(typing.get_args(inner))


MODEL_OF: dict[str, type[BaseModel]] = {
    m.model_fields["type"].default: m for u in UNIONS.values() for m in _models(u)
}
DIRECTIONS: dict[str, list[str]] = {
    t: [d for d, u in UNIONS.items() if MODEL_OF[t] in _models(u)] for t in MODEL_OF
}


def test_every_message_type_has_a_golden_fixture() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(MODEL_OF)


@pytest.mark.parametrize(
    ("kind", "direction"), [(t, d) for t, ds in DIRECTIONS.items() for d in ds]
)
def test_fixture_parses_and_re_encodes_to_the_same_json(kind: str, direction: str) -> None:
    raw = (FIXTURES / f"{kind}.json").read_text(encoding="utf-8")
    message = PARSERS[direction](raw)
    assert type(message) is MODEL_OF[kind]
    assert json.loads(sig.dump(message)) == json.loads(raw)


@pytest.mark.parametrize("kind", sorted(MODEL_OF))
def test_fixture_fields_are_all_pinned(kind: str) -> None:
    fixture = json.loads((FIXTURES / f"{kind}.json").read_text(encoding="utf-8"))
    assert set(fixture) == set(MODEL_OF[kind].model_fields)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ("not json", "message"),
        ('{"type": "call_request"}', "call_id"),
        ('{"type": "launch_missiles", "call_id": "x"}', "message"),
        (
            '{"type": "description", "call_id": "8f0c2f5e-3b1a-4c6e-9a57-2d1f0e6b7c41",'
            ' "description": {"type": "pranswer", "sdp": "v=0"}}',
            "description",
        ),
    ],
)
def test_bad_messages_raise_a_short_signalling_error(raw: str, where: str) -> None:
    with pytest.raises(sig.SignallingError) as caught:
        sig.parse_from_counter(raw)
    assert where in str(caught.value)
    assert len(str(caught.value)) < 300


def test_oversized_message_is_refused_unread() -> None:
    with pytest.raises(sig.SignallingError, match="too large"):
        sig.parse_from_agent("x" * (sig.MAX_MESSAGE_BYTES + 1))


def test_agents_cannot_send_counter_messages() -> None:
    raw = (FIXTURES / "call_request.json").read_text(encoding="utf-8")
    with pytest.raises(sig.SignallingError):
        sig.parse_from_agent(raw)


CALL = "8f0c2f5e-3b1a-4c6e-9a57-2d1f0e6b7c41"
CHROMIUM_CANDIDATES = [
    "candidate:1467250027 1 udp 2122260223 192.0.2.10 51394 typ host generation 0 ufrag Xk3v"
    " network-id 1",
    "candidate:3 1 tcp 1518280447 2001:db8::7 9 typ host tcptype active generation 0",
    "candidate:842163049 1 udp 1677729535 198.51.100.4 61004 typ srflx raddr 192.0.2.10"
    " rport 51394 generation 0 ufrag Xk3v network-cost 50",
    "candidate:2 1 udp 41885439 203.0.113.9 3478 typ relay raddr 198.51.100.4 rport 61004",
    "candidate:1 1 UDP 2122252543 6a1f9c1e-2d1b-4b7e-8d5e-0c6c7e1b2a3f.local 40422 typ host",
]


def _candidate(line: object, **fields: object) -> str:
    body = {"candidate": line, "sdp_mid": "0", "sdp_mline_index": 0} | fields
    return json.dumps({"type": "candidate", "call_id": CALL, "ufrag": "Xk3v", "candidate": body})


@pytest.mark.parametrize("line", CHROMIUM_CANDIDATES)
def test_browsers_candidates_pass_both_hops(line: str) -> None:
    message = sig.parse_from_agent(_candidate(line))
    assert isinstance(message, sig.Candidate)
    assert message.candidate is not None
    assert message.candidate.candidate == line
    assert sig.parse_to_counter(sig.dump(message)) == message


def test_end_of_candidates_is_a_candidate_without_candidate() -> None:
    raw = json.dumps({"type": "candidate", "call_id": CALL, "ufrag": "Xk3v", "candidate": None})
    message = sig.parse_to_counter(sig.parse_from_agent(raw).model_dump_json())
    assert isinstance(message, sig.Candidate)
    assert message.candidate is None


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (_candidate("rm -rf /"), "candidate.candidate"),
        (_candidate("candidate:1 1 udp 1 192.0.2.1 9 typ host\r\na=ice-ufrag:evil"), "candidate"),
        (_candidate("candidate:1 1 udp 1 192.0.2.1 99999999 typ host"), "candidate.candidate"),
        (_candidate("candidate:1 1 sctp 1 192.0.2.1 9 typ host"), "candidate.candidate"),
        (_candidate("candidate:1 1 udp 1 192.0.2.1 9 typ hostile"), "candidate.candidate"),
        (_candidate("candidate:1 1 udp 1 192.0.2.1 9 typ host " + "x" * 600), "candidate"),
        (_candidate(12), "candidate.candidate"),
        (_candidate(CHROMIUM_CANDIDATES[0], sdp_mid=None, sdp_mline_index=None), "candidate"),
        (_candidate(CHROMIUM_CANDIDATES[0], sdp_mline_index=-1), "sdp_mline_index"),
        (_candidate(CHROMIUM_CANDIDATES[0]).replace('"Xk3v"', '"a b"', 1), "ufrag"),
        (json.dumps({"type": "candidate", "call_id": CALL, "ufrag": "Xk3v"}), "candidate"),
    ],
)
def test_garbage_candidates_raise_a_short_signalling_error(raw: str, where: str) -> None:
    for parse in (sig.parse_from_agent, sig.parse_to_counter):
        with pytest.raises(sig.SignallingError) as caught:
            parse(raw)
        assert where in str(caught.value)
        assert len(str(caught.value)) < 300


def test_counters_do_not_send_candidates() -> None:
    with pytest.raises(sig.SignallingError):
        sig.parse_from_counter(_candidate(CHROMIUM_CANDIDATES[0]))


def test_trickle_is_off_unless_said() -> None:
    """An older counter's request and an older server's ``call_taken`` carry no flag."""
    request = sig.parse_from_counter(json.dumps({"type": "call_request", "call_id": CALL}))
    assert isinstance(request, sig.CallRequest)
    assert request.trickle_ice is False
    taken = {"type": "call_taken", "call_id": CALL, "by_me": True, "site": "s", "counter_name": "n"}
    message = sig.parse_to_agent(json.dumps(taken))
    assert isinstance(message, sig.CallTaken)
    assert message.trickle_ice is False


def test_a_garbage_candidate_says_what_it_should_be() -> None:
    with pytest.raises(sig.SignallingError, match="not an ICE candidate line"):
        sig.parse_from_agent(_candidate("candidate:x; DROP TABLE calls"))
