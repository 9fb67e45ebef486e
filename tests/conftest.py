"""Fixtures shared by the whole suite: private brokers, fresh databases, a TURN relay."""

from __future__ import annotations

import os
import signal
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from appliance.hw.audio.runtime import release_native_runtime
from tests.support import machine
from tests.support.databases import fresh_database
from tests.support.mosquitto import Broker

if TYPE_CHECKING:
    from tests.support.coturn import Coturn

# tests/netns needs a loopback-only network namespace: tests/e2e/test_netns.py runs it there.
collect_ignore = [] if os.environ.get("GUICHET_IN_NETNS") == "1" else ["netns"]

_MACHINE_BEFORE = pytest.StashKey[machine.Snapshot]()
_SIGPIPE_RESET_BY = pytest.StashKey[list[str]]()


def _sigpipe_ignored() -> bool:
    """What the kernel says (a C library may change it behind Python's back)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGPIPE - 1) & 1)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Python ignores SIGPIPE; a test (or a native library it loads) that gives it back its
    default would let the next write to a closed socket kill the whole run (exit 141, no
    report). Name the test and ignore it again."""
    yield
    if not _sigpipe_ignored():
        item.config.stash.setdefault(_SIGPIPE_RESET_BY, []).append(item.nodeid)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_MACHINE_BEFORE] = machine.snapshot()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Tests never change the machine's own services' configuration: fail the run if they did.

    livekit's native runtime (the audio tests load it) is stopped here, before Python
    finalizes: see ``release_native_runtime``."""
    release_native_runtime()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reset_by = session.config.stash.get(_SIGPIPE_RESET_BY, [])
    if reset_by and reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("!", "SIGPIPE was no longer ignored after: " + ", ".join(reset_by))
    before = session.config.stash.get(_MACHINE_BEFORE, None)
    if before is None:
        return
    changed = machine.changes(before, machine.snapshot())
    if changed:
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep(
                "!", "the suite changed the machine's own configuration: " + ", ".join(changed)
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto (anonymous, no persistence) on a free loopback port."""
    b = Broker(workdir=tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[Coturn]:
    """A private coturn (TURN over UDP, TCP and TLS; shared secret) on free loopback ports."""
    from tests.support.coturn import coturn  # aioice: only where a test uses it

    with coturn(tmp_path / "coturn") as turn:
        yield turn


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
