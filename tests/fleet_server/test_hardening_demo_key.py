"""Issue 12, finding 10: the demo signed its session cookies with a key printed in the
source, so anyone could forge an administrator's cookie. Each demo run now has its own."""

from __future__ import annotations

import base64
import json

import itsdangerous

from fleet_server.app import create_app
from fleet_server.security import auth
from fleet_server.settings import Settings
from tests.support.databases import migrate_fresh
from tests.support.webapp import PASSWORD, TestClient

PUBLIC_KEY = "demo-secret-key-not-for-production"  # what the source used to ship


def _forged(key: str) -> str:
    """A session cookie as Starlette signs it, claiming user 1 (the demo's admin)."""
    data = base64.b64encode(json.dumps({"uid": 1, "sid": "x" * 43}).encode())
    return itsdangerous.TimestampSigner(key).sign(data).decode()


def test_each_demo_run_has_its_own_secret_key(db_url: str) -> None:
    first, second = (
        Settings(database_url=db_url, demo=True),
        Settings(database_url=db_url, demo=True),
    )
    assert first.secret_key != second.secret_key
    assert PUBLIC_KEY not in (first.secret_key, second.secret_key)
    assert len(first.secret_key) >= 32


def test_a_cookie_signed_with_the_old_public_key_is_worthless(db_url: str) -> None:
    migrate_fresh(db_url)
    settings = Settings(database_url=db_url, demo=True, ingest_enabled=False)
    with TestClient(create_app(settings)) as client:
        with client.app.state.ctx.sessions.begin() as session:  # type: ignore[attr-defined]
            auth.upsert_user(session, "admin", PASSWORD, role="admin")
        client.cookies.set("guichet_session", _forged(PUBLIC_KEY))
        assert client.get("/", follow_redirects=False).status_code == 303
