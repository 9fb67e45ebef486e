"""The documents contract (the call's data channel): golden fixtures pin every message."""

from __future__ import annotations

import json
import math
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from guichet import documents as doc

FIXTURES = Path(__file__).parent / "fixtures" / "documents"
UNIONS = {"browser→counter": doc.BrowserToCounter, "counter→browser": doc.CounterToBrowser}
PARSERS = {"browser→counter": doc.parse_from_browser, "counter→browser": doc.parse_to_browser}


def _models(union: Any) -> list[type[BaseModel]]:
    return list(typing.get_args(typing.get_args(union)[0]))


MODEL_OF: dict[str, type[BaseModel]] = {
    m.model_fields["type"].default: m for u in UNIONS.values() for m in _models(u)
}
DIRECTIONS = {t: [d for d, u in UNIONS.items() if MODEL_OF[t] in _models(u)] for t in MODEL_OF}


def test_every_message_type_has_a_golden_fixture() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(MODEL_OF)


@pytest.mark.parametrize(
    ("kind", "direction"), [(t, d) for t, ds in DIRECTIONS.items() for d in ds]
)
def test_fixture_parses_and_re_encodes_to_the_same_json(kind: str, direction: str) -> None:
    raw = (FIXTURES / f"{kind}.json").read_text(encoding="utf-8")
    parser: Any = PARSERS[direction]
    message = parser(raw)
    assert type(message) is MODEL_OF[kind]
    assert json.loads(doc.dump(message)) == json.loads(raw)


@pytest.mark.parametrize("kind", sorted(MODEL_OF))
def test_fixture_fields_are_all_pinned(kind: str) -> None:
    fixture = json.loads((FIXTURES / f"{kind}.json").read_text(encoding="utf-8"))
    assert set(fixture) == set(MODEL_OF[kind].model_fields)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ("not json", "message"),
        ('{"type": "scan_request", "id": "a", "resolution": 600}', "resolution"),
        ('{"type": "print_start", "id": "a", "name": "x", "size": -1, "sha256": "0"}', "size"),
        ('{"type": "scan_request", "id": "../etc"}', "id"),
        ('{"type": "job_state", "id": "a", "state": "done"}', "message"),  # counter → browser
    ],
)
def test_bad_messages_raise_a_short_error(raw: str, where: str) -> None:
    with pytest.raises(doc.DocumentError) as caught:
        doc.parse_from_browser(raw)
    assert where in str(caught.value)
    assert len(str(caught.value)) < 300


def test_oversized_message_is_refused_unread() -> None:
    with pytest.raises(doc.DocumentError, match="too large"):
        doc.parse_from_browser("x" * (doc.MAX_MESSAGE_BYTES + 1))


def test_chunks_cover_the_file_in_16_kib_pieces() -> None:
    data = bytes(range(256)) * 200  # 51,200 bytes
    pieces = doc.chunks(data)
    assert [len(p) for p in pieces] == [16384, 16384, 16384, 2048]
    assert b"".join(pieces) == data


def test_the_browser_module_mirrors_the_contract_constants() -> None:
    js = (
        Path(__file__).parents[1] / "fleet_server" / "web" / "static" / "agent_documents.js"
    ).read_text()

    def js_constant(name: str) -> int:
        match = re.search(rf"const {name} = ([0-9 *]+);", js)
        assert match is not None, name
        return math.prod(int(f) for f in match.group(1).split("*"))

    assert js_constant("CHUNK_BYTES") == doc.CHUNK_BYTES
    assert js_constant("HIGH_WATER_BYTES") == doc.HIGH_WATER_BYTES
    assert js_constant("LOW_WATER_BYTES") == doc.LOW_WATER_BYTES
    call_js = (
        Path(__file__).parents[1] / "fleet_server" / "web" / "static" / "agent_call.js"
    ).read_text()
    assert f'createDataChannel("{doc.CHANNEL_LABEL}", {{ ordered: true }})' in call_js
