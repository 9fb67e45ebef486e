"""Remote support's actions on the wire: each ``Action`` is a ``cmd`` pinned by a golden
fixture, the self-test's results travel in ``cmd/ack``'s ``checks``, and ``checks`` was added
within v1 (an ack without it, from an older counter, still decodes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guichet import contract
from guichet.actions import ACTION_LABELS, ACTION_TIMEOUT_S, Action
from guichet.events import CheckOutcome

ACTIONS = Path(__file__).parent / "fixtures" / "contract" / "actions"


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_every_action_is_a_command_pinned_by_a_fixture(action: Action) -> None:
    raw = (ACTIONS / f"{action.value}.json").read_bytes()
    command = contract.decode(contract.Kind.CMD, raw)
    assert isinstance(command, contract.Command)
    assert command.name == action.value
    assert json.loads(contract.encode(command)) == json.loads(raw)
    assert ACTION_LABELS[action]
    assert ACTION_TIMEOUT_S[action] > 0


@pytest.mark.parametrize("name", ["selftest_ack", "refused_in_call_ack", "screenshot_refused_ack"])
def test_action_acks_decode_and_re_encode_to_the_same_json(name: str) -> None:
    raw = (ACTIONS / f"{name}.json").read_bytes()
    ack = contract.decode(contract.Kind.CMD_ACK, raw)
    assert isinstance(ack, contract.CommandAck)
    assert json.loads(contract.encode(ack)) == json.loads(raw)


def test_the_selftest_ack_carries_each_check() -> None:
    ack = contract.decode(contract.Kind.CMD_ACK, (ACTIONS / "selftest_ack.json").read_bytes())
    assert isinstance(ack, contract.CommandAck)
    assert [(c.name, c.outcome) for c in ack.checks] == [
        ("camera", CheckOutcome.OK),
        ("printer", CheckOutcome.FAILED),
        ("scanner", CheckOutcome.SKIPPED),
        ("network", CheckOutcome.OK),
    ]


def test_checks_were_added_within_v1() -> None:
    raw = json.loads((ACTIONS / "selftest_ack.json").read_bytes())
    del raw["checks"]
    older = contract.decode(contract.Kind.CMD_ACK, json.dumps(raw).encode())
    assert isinstance(older, contract.CommandAck)
    assert older.checks == []


def test_a_check_with_an_unknown_outcome_is_refused() -> None:
    raw = json.loads((ACTIONS / "selftest_ack.json").read_bytes())
    raw["checks"][0]["outcome"] = "maybe"
    with pytest.raises(contract.ContractError, match="checks"):
        contract.decode(contract.Kind.CMD_ACK, json.dumps(raw).encode())
