"""Fixtures shared by the fleet server's storage tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fleet_server.storage_support import migrated


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a freshly migrated database of this test's own."""
    with migrated(db_url) as factory:
        yield factory
