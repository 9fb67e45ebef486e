"""Fixtures shared by the fleet server's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fleet_server.storage_support import migrated
from tests.support.webapp import WebApp, running_app


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a freshly migrated database of this test's own."""
    with migrated(db_url) as factory:
        yield factory


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    """The server on a database of this test's own, an administrator logged in."""
    with running_app(db_url) as app:
        app.add_user()
        assert app.login().status_code == 303
        yield app
