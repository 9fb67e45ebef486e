"""Fixtures shared by the whole suite: private brokers and fresh databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.mosquitto import Broker

# tests/netns needs a loopback-only network namespace: tests/e2e/test_netns.py runs it there.
collect_ignore = [] if os.environ.get("GUICHET_IN_NETNS") == "1" else ["netns"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto (anonymous, no persistence) on a free loopback port."""
    b = Broker(workdir=tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
