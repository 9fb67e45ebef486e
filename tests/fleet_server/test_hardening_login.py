"""Issue 12, finding 1, on the real app served by uvicorn as ``guichet fleet serve`` serves
it: ``X-Forwarded-For`` changed on each try no longer escapes the login throttle, a pending
second-factor session allows a few codes only (even replayed from another address), and the
throttle's memory is bounded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from sqlalchemy import update

from fleet_server.models import User
from fleet_server.security.auth import LoginThrottle
from fleet_server.web.login import TOTP_MAX_ATTEMPTS
from tests.support.live_server import LiveApp, live_app
from tests.support.webapp import CSRF_RE, PASSWORD

SECRET = pyotp.random_base32()


# (trusted proxies, what the app receives on try i): straight from the attacker, a fresh
# address each time; or through the proxy, which appends the real client after the lie.
SETUPS = {
    "no-proxy": ([], lambda i: f"198.51.100.{i}"),
    "behind-proxy": (["127.0.0.1"], lambda i: f"198.51.100.{i}, 203.0.113.7"),
}


@pytest.fixture(params=sorted(SETUPS))
async def live(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveApp]:
    trusted, _ = SETUPS[request.param]
    async with live_app(db_url, trusted_proxies=trusted) as app:
        app.add_user("admin", role="admin", service=None)
        app.forwarded_for = SETUPS[request.param][1]  # type: ignore[attr-defined]
        yield app


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    match = CSRF_RE.search((await client.get(path)).text)
    assert match, path
    return match.group(1)


async def test_a_new_forwarded_address_per_try_does_not_escape_the_throttle(
    live: LiveApp,
) -> None:
    codes = []
    async with httpx.AsyncClient(base_url=live.url) as client:
        for i in range(30):
            spoofed = {"X-Forwarded-For": live.forwarded_for(i)}  # type: ignore[attr-defined]
            data = {"username": "admin", "password": f"wrong {i}"}
            data["csrf_token"] = await _csrf(client, "/login")
            codes.append((await client.post("/login", data=data, headers=spoofed)).status_code)
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}


async def test_a_pending_second_factor_allows_a_few_codes_only(db_url: str) -> None:
    """Every try from another address behind the trusted proxy (a botnet) and with the same
    pending-session cookie replayed: only the per-session limit can stop it."""
    async with live_app(db_url, trusted_proxies=["127.0.0.1"]) as live:
        live.add_user("admin", role="admin", service=None)
        with live.sessions.begin() as session:
            session.execute(update(User).values(totp_secret=SECRET))
        async with httpx.AsyncClient(base_url=live.url) as client:
            data = {"username": "admin", "password": PASSWORD}
            data["csrf_token"] = await _csrf(client, "/login")
            assert (await client.post("/login", data=data)).headers["location"] == "/login/totp"
            pending = dict(client.cookies)
            form = await _csrf(client, "/login/totp")
            right = pyotp.TOTP(SECRET).now()
            wrong = f"{(int(right) + 1) % 1_000_000:06d}"
            tried = 0
            for i in range(30):
                client.cookies.clear()
                client.cookies.update(pending)  # the same pending session, replayed
                xff = {"X-Forwarded-For": f"192.0.2.{i + 1}"}
                answer = await client.post(
                    "/login/totp", data={"code": wrong, "csrf_token": form}, headers=xff
                )
                tried += answer.status_code == 401
            assert tried == TOTP_MAX_ATTEMPTS
            client.cookies.clear()
            client.cookies.update(pending)
            late = await client.post(
                "/login/totp", data={"code": right, "csrf_token": form}, follow_redirects=False
            )
            assert late.status_code in (303, 429)
            assert late.headers.get("location") != "/"
            assert (await client.get("/", follow_redirects=False)).status_code == 303


def test_the_throttle_memory_is_bounded_and_keeps_its_locks() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, max_keys=100, clock=lambda: now[0])
    for _ in range(3):
        throttle.failure("admin|203.0.113.7")
    assert throttle.locked_for("admin|203.0.113.7") > 0
    for i in range(20_000):  # one failure each from a botnet's addresses
        now[0] += 0.001
        throttle.failure(f"guess-{i}|198.51.100.{i % 250}")
    assert throttle.size() <= 100
    assert throttle.locked_for("admin|203.0.113.7") > 0


def test_forwarded_for_is_read_right_to_left_from_trusted_proxies_only() -> None:
    from fleet_server.security.proxies import client_address

    trusted = ["127.0.0.1", "10.0.0.0/8"]
    assert client_address("127.0.0.1", ["1.2.3.4, 203.0.113.7"], trusted) == "203.0.113.7"
    assert client_address("127.0.0.1", ["1.2.3.4", "203.0.113.7, 10.1.2.3"], trusted) == (
        "203.0.113.7"
    )
    assert client_address("198.51.100.9", ["1.2.3.4"], trusted) == "198.51.100.9"
    assert client_address("127.0.0.1", ["not-an-ip"], trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", ["1.2.3.4"], []) == "127.0.0.1"
    assert re.fullmatch(r"[0-9.]+", client_address("127.0.0.1", [], trusted))
