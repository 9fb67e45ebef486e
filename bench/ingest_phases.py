"""Where the ingest's time goes, per phase, for ``bench/fleet_ingest.py --phases``.

Installed in the ingest's own process before it starts: it wraps the writer thread's steps
(waiting for messages, decoding, the store's Python, each of its SQL statements, the
commit, the metrics, the acknowledgements), times the garbage collector, and reads the CPU
time of the writer, of paho's network thread and of PostgreSQL's backends. Bench-only
instrumentation: the server's code is not changed.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from fleet_server.mqtt import ingest, store, writer

WALL: Counter[str] = Counter()  # seconds of wall time per phase, nested phases excluded
CPU: Counter[str] = Counter()  # seconds of the writer thread's CPU per phase, the same way
_stack: list[str] = []


@contextmanager
def _phase(name: str) -> Iterator[None]:
    """Time ``name``, charging the time of phases nested in it to them, not to it."""
    outer = _stack[-1] if _stack else None
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    if outer is not None:
        WALL[outer] += wall0
        CPU[outer] += cpu0
    _stack.append(name)
    try:
        yield
    finally:
        _stack.pop()
        wall1, cpu1 = time.perf_counter(), time.thread_time()
        WALL[name] += wall1 - wall0
        CPU[name] += cpu1 - cpu0
        if outer is not None:
            WALL[outer] -= wall1
            CPU[outer] -= cpu1


def _wrap(owner: Any, attribute: str, name: str | Callable[..., str]) -> None:
    original: Callable[..., Any] = getattr(owner, attribute)

    def timed(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name != "guichet-ingest-writer":
            return original(*args, **kwargs)  # the web app's or health's own queries
        with _phase(name if isinstance(name, str) else name(*args)):
            return original(*args, **kwargs)

    setattr(owner, attribute, timed)


def _statement(_connection: Connection, sql: str, *_args: Any) -> str:
    """``SQL: UPDATE devices``, ``SQL: INSERT INTO events``…"""
    words = sql.split(" ", 3)
    return "SQL: " + " ".join(words[:3] if words[0] == "INSERT" else words[:2])


_gc_started = [0.0]
GC: Counter[str] = Counter()  # seconds in the garbage collector, any thread, per generation


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC[f"garbage collector, generation {info['generation']}"] += (
            time.perf_counter() - _gc_started[0]
        )


def install() -> None:
    """Wrap the writer's steps; call before ``Ingest.start``."""
    gc.callbacks.append(_on_gc)
    _wrap(writer.BatchWriter, "_next_batch", "waiting for messages")
    _wrap(writer, "decode", "decode (pydantic, topic)")
    _wrap(writer.BatchWriter, "_store", "store: Python (apply, rows)")
    _wrap(Session, "execute", "SQL: loading devices and open alerts")
    if writes := getattr(getattr(store, "bulk", None), "Writes", None):  # since issue 16
        _wrap(writes, "run", "SQL: the batch's writes, together")
    _wrap(Connection, "exec_driver_sql", _statement)
    _wrap(Connection, "_commit_impl", "SQL: COMMIT")
    _wrap(writer.BatchWriter, "_count", "metrics")
    _wrap(ingest.Ingest, "_ack", "acknowledgements (PUBACK)")


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of the writer thread and of paho's network thread (while running)."""
    out = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        if thread.name == "guichet-ingest-writer":
            label = "writer thread"
        elif thread.name.startswith("paho-mqtt-client"):
            label = "network thread (paho)"
        else:
            continue
        out[label] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return out


def postgres_cpu(engine: Engine) -> float | None:
    """CPU seconds of the PostgreSQL backends serving this database (the ingest's, health's),
    read from /proc: the server's share of the work. None on SQLite, or a server elsewhere."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pids = connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalars()
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def report(messages: int, threads: dict[str, float]) -> list[str]:
    """Lines to print: per phase, wall and CPU ms per 1,000 messages."""
    per_k = 1000 / max(messages, 1)
    lines = ["  writer thread, per 1,000 messages:       wall ms    CPU ms"]
    for name, wall in sorted(WALL.items(), key=lambda item: -item[1]):
        lines.append(f"    {name:<36} {wall * 1000 * per_k:8.1f}  {CPU[name] * 1000 * per_k:8.1f}")
    lines.append("  any thread, per 1,000 messages:          wall ms")
    for name, wall in sorted(GC.items()):
        lines.append(f"    {name:<36} {wall * 1000 * per_k:8.1f}")
    for label, cpu in sorted(threads.items()):
        lines.append(f"  {label + ' CPU':<38} {cpu * 1000 * per_k:18.1f}")
    return lines
