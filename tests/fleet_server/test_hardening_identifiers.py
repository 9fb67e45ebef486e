"""Issue 12, finding 8: an identifier with a trailing newline passed ``re.match`` with
``$`` and put a broken line into Mosquitto's password file. Every pattern now matches the
whole string."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fleet_server.calls import admin as calls_admin
from fleet_server.models import EnrolmentRequest
from fleet_server.security import enrolment
from guichet import contract
from tests.fleet_server.enrolment_support import ask, enrolment_web, new_token
from tests.support.webapp import WebApp


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[WebApp]:
    with enrolment_web(db_url, tmp_path) as app:
        yield app


@pytest.mark.parametrize("bad", ["guichet-nl\n", "guichet\nintrus:$7$x", "\nguichet-a"])
def test_a_device_id_with_a_newline_is_refused(web: WebApp, bad: str) -> None:
    token = new_token(web, pre_approved="1")
    asked = ask(web, token, bad)
    assert asked.status_code in (403, 422)
    with web.sessions() as session:
        assert session.scalars(select(EnrolmentRequest)).all() == []
    passwd = web.settings.broker_files_dir / "passwd"  # type: ignore[operator]
    lines = passwd.read_text().splitlines() if passwd.exists() else []
    assert all(line.count(":") == 1 and line.split(":")[0] for line in lines)


def test_identifier_patterns_match_whole_strings() -> None:
    assert not contract.is_valid_device_id("guichet-a\n")
    assert not enrolment.valid_identity("guichet-a\n", "serial:abcd")
    assert not enrolment.valid_identity("guichet-a", "serial:abcd\n")
    assert calls_admin.valid_service_code("caf")
    assert not calls_admin.valid_service_code("caf\n")
