"""The on-disk outbox: order, durability across reopen, removal, and the bound policy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.fleet.outbox import Outbox
from guichet import contract

EVENT = contract.topic("guichet-test", contract.Kind.EVENT)
SURVEY = contract.topic("guichet-test", contract.Kind.SURVEY)
ACK = contract.topic("guichet-test", contract.Kind.CMD_ACK)
SMALLEST_BOUND = 3  # tests use tiny bounds; the config enforces ≥ 100 in production


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = await Outbox.open(tmp_path / "outbox.sqlite3", max_messages=1000)
    yield box
    await box.close()


async def test_peek_returns_messages_in_insertion_order(outbox: Outbox) -> None:
    seqs = [await outbox.append(EVENT, f"m{i}".encode()) for i in range(5)]
    batch = await outbox.peek()
    assert [m.seq for m in batch] == seqs
    assert [m.payload for m in batch] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert all(m.qos == 1 and not m.retain for m in batch)
    assert outbox.count == 5


async def test_peek_after_a_cursor_and_with_a_limit(outbox: Outbox) -> None:
    seqs = [await outbox.append(EVENT, b"x") for _ in range(6)]
    page = await outbox.peek(after_seq=seqs[1], limit=3)
    assert [m.seq for m in page] == seqs[2:5]


async def test_remove_forgets_only_that_message(outbox: Outbox) -> None:
    first = await outbox.append(EVENT, b"a")
    await outbox.append(EVENT, b"b", retain=True)
    await outbox.remove(first)
    await outbox.remove(first)  # a repeated PUBACK is harmless
    remaining = await outbox.peek()
    assert [(m.payload, m.retain) for m in remaining] == [(b"b", True)]
    assert outbox.count == 1


async def test_append_sets_the_event_the_link_waits_on(outbox: Outbox) -> None:
    outbox.appended.clear()
    await outbox.append(EVENT, b"a")
    assert outbox.appended.is_set()


async def test_messages_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.sqlite3"
    box = await Outbox.open(path, max_messages=1000)
    for i in range(3):
        await box.append(EVENT, f"m{i}".encode())
    await box.remove((await box.peek(limit=1))[0].seq)
    await box.close()

    again = await Outbox.open(path, max_messages=1000)
    try:
        assert again.count == 2
        assert [m.payload for m in await again.peek()] == [b"m1", b"m2"]
        newer = await again.append(EVENT, b"m3")
        assert newer > max(m.seq for m in await again.peek(limit=2))
    finally:
        await again.close()


async def test_uses_wal_and_full_sync(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    box = await Outbox.open(path, max_messages=1000)
    await box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_full_outbox_drops_the_oldest_expendable_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3", max_messages=SMALLEST_BOUND)
    try:
        await box.append(SURVEY, b"survey-1")
        await box.append(EVENT, b"event-1")
        await box.append(ACK, b"ack-1")
        with caplog.at_level(logging.ERROR, logger="appliance.fleet.outbox"):
            await box.append(EVENT, b"event-2")  # drops event-1, keeps the survey
            await box.append(EVENT, b"event-3")  # drops ack-1
        assert [m.payload for m in await box.peek()] == [b"survey-1", b"event-2", b"event-3"]
        assert box.count == SMALLEST_BOUND
        assert box.dropped_total == 2
        overflow_logs = [r for r in caplog.records if "outbox full" in r.getMessage()]
        assert len(overflow_logs) == 1  # once per overflow episode, not per drop
    finally:
        await box.close()


async def test_surveys_are_dropped_only_when_nothing_else_is_left(tmp_path: Path) -> None:
    box = await Outbox.open(tmp_path / "o.sqlite3", max_messages=SMALLEST_BOUND)
    try:
        for i in range(SMALLEST_BOUND):
            await box.append(SURVEY, f"s{i}".encode())
        await box.append(SURVEY, b"s3")
        assert [m.payload for m in await box.peek()] == [b"s1", b"s2", b"s3"]
    finally:
        await box.close()


async def test_drop_count_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path, max_messages=SMALLEST_BOUND)
    for _ in range(SMALLEST_BOUND + 2):
        await box.append(EVENT, b"e")
    await box.close()
    again = await Outbox.open(path, max_messages=SMALLEST_BOUND)
    try:
        assert again.dropped_total == 2
        assert again.count == SMALLEST_BOUND
    finally:
        await again.close()


async def test_a_smaller_bound_after_restart_trims_on_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = await Outbox.open(path, max_messages=10)
    for i in range(6):
        await box.append(EVENT, f"e{i}".encode())
    await box.close()
    again = await Outbox.open(path, max_messages=SMALLEST_BOUND)
    try:
        await again.append(EVENT, b"e6")
        assert [m.payload for m in await again.peek()] == [b"e4", b"e5", b"e6"]
        assert again.dropped_total == 4
    finally:
        await again.close()


async def test_unusable_path_fails_at_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        await Outbox.open(blocker / "outbox.sqlite3", max_messages=100)
