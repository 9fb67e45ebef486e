"""The on-disk outbox: every QoS 1 message waits here until the broker acknowledged it.

A message is appended (and fsynced) *before* any publish is attempted, read back in
insertion order by the fleet link, and removed only after its PUBACK. It therefore
survives a broker outage of any length, a process crash and a power cut; the price is
that a message whose PUBACK was lost is sent twice, which the server absorbs (events,
survey answers and command acks all carry a unique id).

Storage: one SQLite file in WAL mode with ``synchronous=FULL``. With WAL, ``NORMAL``
already survives a *process* crash, but a power cut can roll back the last commits, and
counters sit in town halls where someone eventually pulls the plug: ``FULL`` fsyncs the
WAL on every commit. Messages are few (events, surveys, acks: a handful a minute), so one
fsync each is cheap — 0.2 ms on a virtio disk, a few ms on an SD card.

Threading: because an fsync on an SD card is *not* reliably sub-millisecond, every SQLite
call runs on one dedicated worker thread (a single-thread executor), never on the event
loop. One thread also serialises access, so the connection needs no lock. The one
exception is :meth:`Outbox.append_now`, for a message that must be on disk before its
producer goes on (events, survey answers): the loop waits for that one commit — a few ms
on an SD card, a handful of times a minute — rather than keep the message in memory,
where a crash would lose it (issue 12, finding 14).

Bound (``fleet.outbox_max_messages``, 100,000 by default: weeks of a counter's events):
when full, an append **drops the oldest expendable message** to make room, and never
refuses the new one — the newest information about a counter is the most useful, and a
refused message would be lost just the same. Survey answers are not expendable (they are
the uptake measure and cannot be produced again); events and command acks are. Only if the
outbox holds nothing but survey answers is the oldest survey answer dropped. Drops are
counted (``dropped_total``, kept on disk across restarts) and logged at error level once
per overflow episode; the application turns a new drop count into an ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from appliance.errors import OutboxDiskError
from guichet import contract

logger = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"  # under the device's data_dir; the agent and the self-test share it
BUSY_TIMEOUT_S = 5.0  # only our one thread writes; a wait this long means a stuck disk
PRECIOUS_KINDS = frozenset({contract.Kind.SURVEY})  # dropped last: cannot be produced again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    expendable INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_drop_order ON outbox (expendable DESC, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped_total', 0);
"""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One stored message; ``seq`` grows with insertion order and is never reused."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _is_expendable(topic: str) -> bool:
    try:
        _, kind = contract.parse_topic(topic)
    except contract.ContractError:
        return True
    return kind not in PRECIOUS_KINDS


class Outbox:
    """A durable FIFO of messages awaiting their PUBACK. Open with ``await Outbox.open()``."""

    def __init__(self, path: Path, max_messages: int) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.path = path
        self.max_messages = max_messages
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._count = 0
        self._dropped_total = 0
        self._overflowing = False
        self.appended = asyncio.Event()  # set on every append; the link clears it

    @classmethod
    async def open(cls, path: Path, max_messages: int) -> Outbox:
        outbox = cls(path, max_messages)
        try:
            await outbox._call(outbox._open_sync)
        except BaseException:
            await outbox.close()
            raise
        return outbox

    @property
    def count(self) -> int:
        """Messages waiting (kept in memory; exact, as only this object writes)."""
        return self._count

    @property
    def dropped_total(self) -> int:
        """Messages dropped by the bound since the outbox was created (survives restarts)."""
        return self._dropped_total

    async def append(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> int:
        """Store a message durably and return its ``seq``; raises OutboxDiskError on disk errors."""
        try:
            return await self._call(self._append_sync, topic, payload, qos, retain)
        finally:
            self.appended.set()

    def append_now(self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False) -> int:
        """Store a message durably *before returning* (from the loop, synchronously): the
        caller goes on only once it is fsynced. Raises OutboxDiskError on disk errors."""
        job = functools.partial(self._append_sync, topic, payload, qos, retain)
        try:
            return self._executor.submit(contextvars.copy_context().run, job).result()
        finally:
            self.appended.set()

    async def peek(self, after_seq: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` messages with ``seq > after_seq``, oldest first."""
        return await self._call(self._peek_sync, after_seq, limit)

    async def remove(self, seq: int) -> None:
        """Forget a message once the broker acknowledged it (unknown seq: no-op)."""
        await self._call(self._remove_sync, seq)

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._close_sync)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    # --- the worker thread's side -------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` on the worker thread. A cancelled caller does not cancel the job:
        an append that was submitted completes (the message is stored, and sent later)."""
        # Like asyncio.to_thread, carry the context over: log lines keep their device_id.
        job = functools.partial(contextvars.copy_context().run, fn, *args)
        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_log_late_failure)
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is closed")
        return self._db

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._count = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
            row = db.execute("SELECT value FROM meta WHERE key = 'dropped_total'").fetchone()
            self._dropped_total = int(row[0])
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        logger.info("outbox opened", extra={"path": str(self.path), "waiting": self._count})

    def _append_sync(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        db = self._conn()
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                dropped = self._make_room_sync(db)
                cursor = db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, expendable)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (topic, payload, qos, int(retain), int(_is_expendable(topic))),
                )
        except sqlite3.Error as exc:
            logger.error("outbox append failed", extra={"topic": topic, "error": str(exc)})
            raise OutboxDiskError(f"outbox cannot store the message: {exc}") from exc
        self._count += 1 - dropped
        self._dropped_total += dropped
        self._note_overflow(dropped)
        return int(cursor.lastrowid or 0)

    def _make_room_sync(self, db: sqlite3.Connection) -> int:
        excess = self._count - self.max_messages + 1
        if excess <= 0:
            return 0
        db.execute(
            "DELETE FROM outbox WHERE seq IN"
            " (SELECT seq FROM outbox ORDER BY expendable DESC, seq LIMIT ?)",
            (excess,),
        )
        db.execute(
            "UPDATE meta SET value = value + ? WHERE key = 'dropped_total'",
            (excess,),
        )
        return excess

    def _note_overflow(self, dropped: int) -> None:
        if dropped and not self._overflowing:
            self._overflowing = True
            logger.error(
                "outbox full: dropping the oldest messages",
                extra={"max_messages": self.max_messages, "dropped_total": self._dropped_total},
            )
        elif not dropped and self._overflowing and self._count < self.max_messages:
            self._overflowing = False

    def _peek_sync(self, after_seq: int, limit: int) -> list[OutboxMessage]:
        rows = self._conn().execute(
            "SELECT seq, topic, payload, qos, retain FROM outbox"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            OutboxMessage(seq=s, topic=t, payload=bytes(p), qos=q, retain=bool(r))
            for s, t, p, q, r in rows
        ]

    def _remove_sync(self, seq: int) -> None:
        db = self._conn()
        with db:
            removed = db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount
        self._count -= removed
        if self._overflowing and self._count < self.max_messages:
            self._overflowing = False

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _log_late_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        logger.error("outbox operation failed after its caller left", exc_info=exc)
