"""The wire contract: golden fixtures pin every message; topics build and parse strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guichet import contract

FIXTURES = Path(__file__).parent / "fixtures" / "contract"
FIXTURE_OF = {kind: FIXTURES / f"{kind.value.replace('/', '_')}.json" for kind in contract.Kind}


def test_every_kind_has_a_golden_fixture() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(
        p.name for p in FIXTURE_OF.values()
    )


@pytest.mark.parametrize("kind", list(contract.Kind), ids=lambda k: k.value)
def test_fixture_decodes_and_re_encodes_to_the_same_json(kind: contract.Kind) -> None:
    raw = FIXTURE_OF[kind].read_bytes()
    message = contract.decode(kind, raw)
    assert isinstance(message, contract.KINDS[kind].model)
    assert json.loads(contract.encode(message)) == json.loads(raw)


@pytest.mark.parametrize("kind", list(contract.Kind), ids=lambda k: k.value)
def test_fixture_fields_are_all_pinned(kind: contract.Kind) -> None:
    """A field added to a model without its fixture fails here, not in production."""
    fixture = json.loads(FIXTURE_OF[kind].read_bytes())
    assert set(fixture) == set(contract.KINDS[kind].model.model_fields)


@pytest.mark.parametrize(
    "kind", [contract.Kind.TELEMETRY, contract.Kind.EVENT, contract.Kind.SURVEY], ids=str
)
def test_clock_synchronised_was_added_compatibly(kind: contract.Kind) -> None:
    """A counter from before the field still talks to a newer server (and the reverse)."""
    raw = json.loads(FIXTURE_OF[kind].read_bytes())
    assert raw.pop("clock_synchronised") is True
    older = contract.decode(kind, json.dumps(raw).encode())
    assert getattr(older, "clock_synchronised") is None  # noqa: B009 - one name, three models
    assert contract.KINDS[kind].model.model_fields["clock_synchronised"].default is None


def test_unknown_fields_are_ignored_within_v1() -> None:
    raw = json.loads(FIXTURE_OF[contract.Kind.EVENT].read_bytes())
    raw["added_in_a_later_release"] = 42
    event = contract.decode(contract.Kind.EVENT, json.dumps(raw).encode())
    assert "added_in_a_later_release" not in json.loads(contract.encode(event))


@pytest.mark.parametrize(
    ("kind", "payload", "where"),
    [
        (contract.Kind.EVENT, b"not json", "payload"),
        (contract.Kind.STATUS, b'{"v": 1}', "state"),
        (contract.Kind.CMD, b'{"v": 2, "request_id": "x"}', "v"),
        (contract.Kind.CMD_ACK, b"[]", "payload"),
    ],
)
def test_bad_payloads_raise_a_short_contract_error(
    kind: contract.Kind, payload: bytes, where: str
) -> None:
    with pytest.raises(contract.ContractError) as caught:
        contract.decode(kind, payload)
    assert where in str(caught.value)


def test_oversized_payload_is_refused_unread() -> None:
    with pytest.raises(contract.ContractError, match="too large"):
        contract.decode(contract.Kind.EVENT, b" " * (contract.MAX_PAYLOAD_BYTES + 1))


@pytest.mark.parametrize("kind", list(contract.Kind), ids=lambda k: k.value)
def test_topic_round_trip(kind: contract.Kind) -> None:
    name = contract.topic("bandiat-01", kind)
    assert name == f"guichet/v1/bandiat-01/{kind.value}"
    assert contract.parse_topic(name) == ("bandiat-01", kind)


def test_server_subscription_covers_every_device() -> None:
    assert contract.subscription_all(contract.Kind.CMD_ACK) == "guichet/v1/+/cmd/ack"


@pytest.mark.parametrize(
    "device_id", ["", "A-upper", "-leading-dash", "has space", "x", "a/b", "a+b", "é-accent"]
)
def test_topic_refuses_bad_device_ids(device_id: str) -> None:
    with pytest.raises(contract.ContractError):
        contract.topic(device_id, contract.Kind.STATUS)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("guichet/v2/bandiat-01/status", "unknown protocol version"),
        ("other/v1/bandiat-01/status", "unknown topic"),
        ("guichet/v1/bandiat-01", "unknown topic"),
        ("guichet/v1/bandiat-01/whatever", "unknown message kind"),
        ("guichet/v1/bandiat-01/cmd/nack", "unknown message kind"),
        ("guichet/v1/BAD ID/status", "invalid device id"),
        ("guichet/v1/+/status", "invalid device id"),
        ("", "unknown topic"),
    ],
)
def test_parse_topic_refuses_what_is_not_ours(name: str, reason: str) -> None:
    with pytest.raises(contract.ContractError, match=reason):
        contract.parse_topic(name)


def test_qos_and_retain_per_kind() -> None:
    assert contract.KINDS[contract.Kind.TELEMETRY].qos == 0
    assert all(
        contract.KINDS[k].qos == 1 for k in contract.Kind if k is not contract.Kind.TELEMETRY
    )
    assert {k for k, spec in contract.KINDS.items() if spec.retained} == {
        contract.Kind.STATUS,
        contract.Kind.CONFIG,
    }


def test_every_kind_has_one_row() -> None:
    assert set(contract.KINDS) == set(contract.Kind)


def test_last_will_says_offline() -> None:
    will = contract.last_will("0.1.0", 30, site="Essai", name="Guichet")
    assert (will.state, will.reason, will.site) == (contract.Presence.OFFLINE, "last-will", "Essai")


def test_config_from_an_older_server_with_removed_fields_still_decodes() -> None:
    """``ice_servers`` and ``texts`` left DeviceConfig within v1 (they had defaults)."""
    raw = json.loads(FIXTURE_OF[contract.Kind.CONFIG].read_bytes())
    raw["ice_servers"] = [{"urls": ["stun:stun.example.org:3478"]}]
    raw["texts"] = {"welcome": "Bonjour"}
    config = contract.decode(contract.Kind.CONFIG, json.dumps(raw).encode())
    assert json.loads(contract.encode(config)) == json.loads(
        FIXTURE_OF[contract.Kind.CONFIG].read_bytes()
    )
