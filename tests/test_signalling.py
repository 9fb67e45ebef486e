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
