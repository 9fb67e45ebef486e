"""Software updates on the wire (issue 13): the ``update`` order is a ``cmd`` whose args are an
``UpdateOrder``, the counter's progress is its own kind, both pinned by golden fixtures; release
versions compare number by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guichet import contract
from guichet.updates import (
    COMPATIBLE,
    FAILURES,
    NEEDS_REASON,
    TERMINAL,
    UPDATE_COMMAND,
    UpdateOrder,
    UpdateState,
    is_newer,
    version_key,
)

UPDATES = Path(__file__).parent / "fixtures" / "contract" / "updates"
PROGRESS_FIXTURES = ["committed", "rolled_back", "installed_waiting"]


def _order_command() -> contract.Command:
    command = contract.decode(contract.Kind.CMD, (UPDATES / "order.json").read_bytes())
    assert isinstance(command, contract.Command)
    return command


def test_the_order_is_a_command_pinned_by_a_fixture() -> None:
    raw = (UPDATES / "order.json").read_bytes()
    command = _order_command()
    assert command.name == UPDATE_COMMAND
    assert json.loads(contract.encode(command)) == json.loads(raw)
    order = UpdateOrder.from_args(command.args)
    assert order.compatible == COMPATIBLE
    assert order.release == "1.5.0"
    assert order.to_args() == json.loads(raw)["args"]  # every field pinned, nothing more


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("bundle_url", "http://flotte.example/bundle", "bundle_url"),  # HTTPS only
        ("sha256", "ABCD", "sha256"),
        ("size", 0, "size"),
        ("release", "latest", "release"),
    ],
)
def test_a_bad_order_is_refused_with_the_field_named(field: str, value: object, where: str) -> None:
    args = dict(_order_command().args)
    args[field] = value  # type: ignore[assignment]
    with pytest.raises(contract.ContractError, match=where):
        UpdateOrder.from_args(args)


def test_an_order_without_its_checksum_is_refused() -> None:
    args = dict(_order_command().args)
    del args["sha256"]
    with pytest.raises(contract.ContractError, match="sha256"):
        UpdateOrder.from_args(args)


@pytest.mark.parametrize("name", PROGRESS_FIXTURES)
def test_progress_fixtures_decode_and_re_encode_to_the_same_json(name: str) -> None:
    raw = (UPDATES / f"{name}.json").read_bytes()
    progress = contract.decode(contract.Kind.UPDATE, raw)
    assert isinstance(progress, contract.UpdateProgress)
    assert json.loads(contract.encode(progress)) == json.loads(raw)
    assert set(json.loads(raw)) == set(contract.UpdateProgress.model_fields)


def test_a_rolled_back_counter_says_why_in_french() -> None:
    raw = (UPDATES / "rolled_back.json").read_bytes()
    progress = contract.decode(contract.Kind.UPDATE, raw)
    assert isinstance(progress, contract.UpdateProgress)
    assert progress.state is UpdateState.ROLLED_BACK
    assert progress.reason is not None
    assert "retour à la version 1.4.2" in progress.reason
    assert progress.booted_version == "1.4.2"


def test_the_refusal_in_a_call_is_a_plain_ack() -> None:
    ack = contract.decode(
        contract.Kind.CMD_ACK, (UPDATES / "refused_in_call_ack.json").read_bytes()
    )
    assert isinstance(ack, contract.CommandAck)
    assert ack.ok is False
    assert ack.request_id == _order_command().request_id


def test_progress_travels_like_an_event() -> None:
    spec = contract.KINDS[contract.Kind.UPDATE]
    assert spec.from_device
    assert spec.qos == contract.QOS_AT_LEAST_ONCE
    assert not spec.retained


@pytest.mark.parametrize(
    ("field", "value"), [("percent", 101), ("state", "exploded"), ("slot", "C")]
)
def test_progress_out_of_bounds_is_refused(field: str, value: object) -> None:
    raw = json.loads((UPDATES / "committed.json").read_bytes())
    raw[field] = value
    with pytest.raises(contract.ContractError, match=field):
        contract.decode(contract.Kind.UPDATE, json.dumps(raw).encode())


def test_terminal_states_and_failures() -> None:
    assert FAILURES < TERMINAL
    assert UpdateState.COMMITTED in TERMINAL - FAILURES
    assert NEEDS_REASON == FAILURES
    assert UpdateState.INSTALLED not in TERMINAL  # waits for its reboot


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        ("1.10", "1.9"),
        ("1.4.1", "1.4"),
        ("2.0.0", "1.99.99"),
        ("1.5.0", "1.5.0-rc2"),
        ("1.5.0-rc2", "1.5.0-rc1"),
        ("2026.12.1", "2026.11.30"),
    ],
)
def test_versions_compare_number_by_number(newer: str, older: str) -> None:
    assert is_newer(newer, older)
    assert not is_newer(older, newer)


def test_trailing_zeros_do_not_make_a_version_newer() -> None:
    assert version_key("1.4") == version_key("1.4.0")
    assert not is_newer("1.4.0", "1.4")


@pytest.mark.parametrize("bad", ["", "v1.4", "1..4", "1.4-", "latest", "1.4\n"])
def test_a_malformed_version_is_refused(bad: str) -> None:
    with pytest.raises(contract.ContractError):
        version_key(bad)
