"""The caption contract (text in the call): golden fixtures pin every message."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from guichet import caption as cap

FIXTURES = Path(__file__).parent / "fixtures" / "caption"
STATIC = Path(__file__).parents[1] / "fleet_server" / "web" / "static"
UNIONS = {"browser→counter": cap.BrowserToCounter, "counter→browser": cap.CounterToBrowser}
PARSERS = {"browser→counter": cap.parse_from_browser, "counter→browser": cap.parse_to_browser}


def _models(union: Any) -> list[type[BaseModel]]:
    inner = typing.get_args(union)[0]
    return list(typing.get_args(inner)) or [inner]


MODEL_OF: dict[str, type[BaseModel]] = {
    m.model_fields["type"].default: m for u in UNIONS.values() for m in _models(u)
}
DIRECTION = {t: d for d, u in UNIONS.items() for t, m in MODEL_OF.items() if m in _models(u)}


def test_every_message_type_has_a_golden_fixture() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(MODEL_OF)


@pytest.mark.parametrize("kind", sorted(MODEL_OF))
def test_fixture_parses_and_re_encodes_to_the_same_json(kind: str) -> None:
    raw = (FIXTURES / f"{kind}.json").read_text(encoding="utf-8")
    message = PARSERS[DIRECTION[kind]](raw)
    assert type(message) is MODEL_OF[kind]
    assert json.loads(cap.dump(message)) == json.loads(raw)
    assert set(json.loads(raw)) == set(MODEL_OF[kind].model_fields)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ("not json", "message"),
        ('{"type": "line", "id": 1, "text": ""}', "text"),
        ('{"type": "line", "id": 1, "text": "' + "x" * 201 + '"}', "text"),
        ('{"type": "line", "id": -1, "text": "Bonjour"}', "id"),
        ('{"type": "shown", "lines": []}', "message"),  # counter → browser only
    ],
)
def test_bad_messages_raise_a_short_error_without_the_text(raw: str, where: str) -> None:
    with pytest.raises(cap.CaptionError) as caught:
        cap.parse_from_browser(raw)
    assert where in str(caught.value)
    assert "xxxxx" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_oversized_message_is_refused_unread() -> None:
    with pytest.raises(cap.CaptionError, match="too large"):
        cap.parse_from_browser("x" * (cap.MAX_MESSAGE_BYTES + 1))


def test_a_line_of_the_longest_kind_fits_in_a_message() -> None:
    longest = cap.Line(id=cap.MAX_LINE_ID, text="\U0001f600" * cap.MAX_LINE_CHARS)
    assert len(cap.dump(longest).encode()) <= cap.MAX_MESSAGE_BYTES
    shown = cap.Shown(id=1, lines=["é" * cap.MAX_LINE_CHARS] * cap.SHOWN_LINES)
    assert len(cap.dump(shown)) <= cap.MAX_MESSAGE_BYTES


def test_the_browser_modules_mirror_the_contract() -> None:
    caption_js = (STATIC / "agent_caption.js").read_text()
    match = re.search(r"const MAX_LINE_CHARS = (\d+);", caption_js)
    assert match is not None
    assert int(match.group(1)) == cap.MAX_LINE_CHARS
    call_js = (STATIC / "agent_call.js").read_text()
    assert f'createDataChannel("{cap.CHANNEL_LABEL}", {{ ordered: true }})' in call_js


def test_the_caption_panel_speaks_the_caption_contract() -> None:
    js = (STATIC / "agent_caption.js").read_text()
    sent = set(re.findall(r'type: "([a-z_]+)"', js))
    handled = set(re.findall(r'message\.type === "([a-z_]+)"', js))
    assert sent == {m.model_fields["type"].default for m in _models(cap.BrowserToCounter)}
    assert handled == {m.model_fields["type"].default for m in _models(cap.CounterToBrowser)}
