"""Vocabularies written once: every member of a shared StrEnum has its French label, and the
agent console's JavaScript uses only the signalling types and end reasons Python defines.

Choice (issue 11): the console's JS is checked against Python here rather than generated —
the JS stays a plain static file, and a type or reason added on one side without the other
fails this test.
"""

from __future__ import annotations

import re
import typing
from enum import StrEnum
from pathlib import Path

import pytest

from guichet import documents, signalling
from guichet.contract import DEVICE_STATE_LABELS, DeviceState, Presence

STATIC = Path(__file__).parent.parent / "fleet_server" / "web" / "static"


@pytest.mark.parametrize(
    ("vocabulary", "labels"),
    [
        (DeviceState, DEVICE_STATE_LABELS),
        (signalling.CallState, signalling.CALL_STATE_LABELS),
        (signalling.EndReason, signalling.END_REASON_LABELS),
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
