"""Vocabularies written once: every member of a shared StrEnum has its French label, and the
agent console's JavaScript uses only the signalling types and end reasons Python defines.

Choice (issue 11): the console's JS is checked against Python here rather than generated —
the JS stays a plain static file, and a type or reason added on one side without the other
fails this test.
"""

from __future__ import annotations

import ast
import re
import typing
from enum import StrEnum
from pathlib import Path

import pytest

from appliance.app import PERIPHERALS
from appliance.selftest_report import MEANINGS
from guichet import actions, contract, documents, events, schedule, signalling, updates
from guichet.contract import DEVICE_STATE_LABELS, DeviceState, Presence

ROOT = Path(__file__).parent.parent
STATIC = ROOT / "fleet_server" / "web" / "static"


@pytest.mark.parametrize(
    ("vocabulary", "labels"),
    [
        (DeviceState, DEVICE_STATE_LABELS),
        (signalling.CallState, signalling.CALL_STATE_LABELS),
        (signalling.EndReason, signalling.END_REASON_LABELS),
        (contract.StatusReason, contract.STATUS_REASON_LABELS),
        (contract.EventKind, contract.EVENT_KIND_LABELS),
        (events.EventField, events.EVENT_FIELD_LABELS),
        (events.Component, events.COMPONENT_LABELS),
        (events.CheckOutcome, events.CHECK_OUTCOME_LABELS),
        (schedule.AccessMode, schedule.ACCESS_MODE_LABELS),
        (contract.AudioRoute, contract.AUDIO_ROUTE_LABELS),
        (actions.Action, actions.ACTION_LABELS),
        (updates.UpdateState, updates.UPDATE_STATE_LABELS),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_every_member_has_a_french_label(
    vocabulary: type[StrEnum], labels: dict[StrEnum, str]
) -> None:
    assert set(labels) == set(vocabulary)
    assert all(label.strip() for label in labels.values())


def test_presence_is_part_of_device_state() -> None:
    assert {p.value for p in Presence} <= {s.value for s in DeviceState}


def test_every_reason_a_counter_gives_has_a_label() -> None:
    said = set(typing.get_args(contract.Status.model_fields["reason"].annotation))
    assert said
    assert said <= {r.value for r in contract.StatusReason}


def _emitted_keys() -> set[str]:
    """The keys of every event the appliance emits: dict literals given to ``emit`` and the
    keyword arguments of ``call_event`` (whose own keys are in its body)."""
    keys: set[str] = set()
    for path in (ROOT / "appliance").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "emit":
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        keys |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
            elif name == "call_event":
                keys |= {k.arg for k in node.keywords if k.arg}
    return keys


def test_every_event_key_the_counter_sends_has_a_label() -> None:
    from appliance.call.phases import call_event

    keys = _emitted_keys()
    assert {"software_version", "component", "duration_s", "reason"} <= keys  # found them
    call = typing.cast(typing.Any, type("Call", (), {"call_id": "c", "service": "caf"}))
    keys |= set(call_event(call))
    assert keys <= {f.value for f in events.EventField}


def test_every_part_a_counter_names_has_a_label() -> None:
    parts = {c.value for c in events.Component}
    assert set(PERIPHERALS) <= parts
    assert set(MEANINGS) <= parts  # the self-test's checks, the keys of its event


def _types(union: object) -> set[str]:
    """The ``type`` literals of a discriminated union of messages."""
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def _js(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def test_agent_console_handles_only_messages_the_server_sends() -> None:
    handled = set(re.findall(r'case "([a-z_]+)":', _js("agent.js")))
    assert handled
    assert handled <= _types(signalling.ServerToAgent)


def test_agent_console_sends_only_messages_the_server_accepts() -> None:
    sent = set(re.findall(r'type: "([a-z_]+)"', _js("agent.js") + _js("agent_call.js")))
    assert sent
    assert sent <= _types(signalling.AgentToServer)


def test_agent_console_words_every_end_reason() -> None:
    block = re.search(r"const END_LABELS = \{(.*?)\};", _js("agent.js"), re.S)
    assert block is not None
    keys = set(re.findall(r"^\s*([a-z_]+):", block.group(1), re.M))
    assert keys == {r.value for r in signalling.EndReason}
    reasons_sent = set(re.findall(r'reason: "([a-z_]+)"', _js("agent.js")))
    assert reasons_sent <= keys


def test_documents_panel_speaks_the_documents_contract() -> None:
    js = _js("agent_documents.js")
    handled = set(re.findall(r'case "([a-z_]+)":', js))
    sent = set(re.findall(r'send\(\{ type: "([a-z_]+)"', js))
    assert handled <= _types(documents.CounterToBrowser)
    assert sent <= _types(documents.BrowserToCounter)
    assert handled
    assert sent
