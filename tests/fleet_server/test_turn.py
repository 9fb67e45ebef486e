"""TURN credentials: what the fleet server signs is what a real coturn accepts (UDP, TCP,
TLS), and nothing else — expired, signed with another secret, or with its expiry pushed back
by whoever holds it; each call's credentials reach that call's two parties only; the
settings refuse a TURN server without a real secret."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aioice import stun
from pydantic import ValidationError
from sqlalchemy import select

from fleet_server.calls.turn import Party, TurnIssuer, turn_password
from fleet_server.models import User
from fleet_server.security import auth
from fleet_server.settings import TURN_SECRET_PLACEHOLDER, Settings
from guichet import signalling as sig
from tests.fleet_server.test_calls import World, link, make_world
from tests.support.coturn import Coturn, Transport, turn_client

KEY = "k" * 32
STUN = sig.IceServer(urls=["stun:stun.example.fr:3478"])
TRANSPORTS: list[Transport] = ["udp", "tcp", "tls"]


async def allocate(
    server: Coturn, transport: Transport, username: str | None, password: str | None
) -> tuple[str, int]:
    """A real TURN allocation with aioice (aiortc's ICE), deleted after; its address."""
    async with turn_client(server, transport, username, password) as client:
        return await client.connect()


def refusal_code(caught: pytest.ExceptionInfo[stun.TransactionFailed]) -> int:
    code: int = caught.value.response.attributes["ERROR-CODE"][0]
    return code


def settings_for(server: Coturn, **extra: object) -> Settings:
    return Settings(database_url="sqlite://", secret_key=KEY, **server.server_settings(), **extra)


def issuer_for(server: Coturn, **extra: object) -> TurnIssuer:
    made = settings_for(server, **extra).turn_issuer()
    assert made is not None
    return made


# --- what coturn accepts ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fresh_credentials_allocate_a_relay(
    turn_server: Coturn, transport: Transport
) -> None:
    issued = issuer_for(turn_server).server(uuid.uuid4(), Party.COUNTER, time.time())
    host, port = await allocate(turn_server, transport, issued.username, issued.credential)
    assert host == turn_server.host
    assert port > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_expired_credentials_are_refused(turn_server: Coturn, transport: Transport) -> None:
    """Issued a TTL ago plus a minute: their expiry is a minute past."""
    make = issuer_for(turn_server)
    issued = make.server(uuid.uuid4(), Party.AGENT, time.time() - make.ttl_s - 60)
    with pytest.raises(stun.TransactionFailed) as caught:
        await allocate(turn_server, transport, issued.username, issued.credential)
    assert refusal_code(caught) == 401


async def test_credentials_expire_for_new_allocations_not_for_a_call_under_way(
    turn_server: Coturn,
) -> None:
    """coturn checks the expiry when a relay is allocated: a call's relay outlives its
    credentials, a new allocation with them (an ICE restart, a thief) is refused. So the
    TTL must cover the call's last reconnection (docs/turn.md)."""
    issued = TurnIssuer((turn_server.url("udp"),), turn_server.secret, 2).server(
        uuid.uuid4(), Party.COUNTER, time.time()
    )
    async with turn_client(turn_server, "udp", issued.username, issued.credential) as call:
        await call.connect()
        refusal: stun.TransactionFailed | None = None
        async with asyncio.timeout(10):
            while refusal is None:  # until the expiry has passed, as coturn's clock sees it
                try:
                    await allocate(turn_server, "udp", issued.username, issued.credential)
                except stun.TransactionFailed as refused:
                    refusal = refused
                else:
                    await asyncio.sleep(0.2)
        assert refusal.response.attributes["ERROR-CODE"][0] == 401
        await call.channel_bind(0x4000, ("127.0.0.1", 5432))  # the call goes on


async def test_credentials_signed_with_another_secret_are_refused(turn_server: Coturn) -> None:
    forged = TurnIssuer(
        tuple(settings_for(turn_server).turn_urls), "un-autre-secret-" + "x" * 16, 3600
    ).server(uuid.uuid4(), Party.COUNTER, time.time())
    with pytest.raises(stun.TransactionFailed) as caught:
        await allocate(turn_server, "udp", forged.username, forged.credential)
    assert refusal_code(caught) == 401


async def test_a_holder_cannot_push_the_expiry_back(turn_server: Coturn) -> None:
    """An attacker with a counter's (or a browser's) credentials rewrites the expiry part
    of the username to make them last: the password no longer matches."""
    issued = issuer_for(turn_server).server(uuid.uuid4(), Party.AGENT, time.time())
    assert issued.username is not None
    expiry, name = issued.username.split(":", 1)
    stretched = f"{int(expiry) + 365 * 24 * 3600}:{name}"
    with pytest.raises(stun.TransactionFailed) as caught:
        await allocate(turn_server, "tcp", stretched, issued.credential)
    assert refusal_code(caught) == 401


async def test_no_credentials_no_relay(turn_server: Coturn) -> None:
    with pytest.raises(stun.TransactionFailed) as caught:
        await allocate(turn_server, "udp", None, None)
    assert refusal_code(caught) == 401


def test_the_password_is_coturns_formula_as_openssl_computes_it() -> None:
    """base64(HMAC-SHA1(secret, username)) (coturn's README.turnserver), cross-checked with
    openssl's own HMAC."""
    username, secret = "1433000000:8f0c2f5e.counter", "north"
    mac = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=username.encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert turn_password(secret, username) == base64.b64encode(mac).decode()


def test_credentials_expire_after_the_ttl_and_name_the_call_and_party() -> None:
    call_id = uuid.uuid4()
    made = TurnIssuer(("turn:turn.example.fr:3478",), "s" * 32, 4 * 3600)
    server = made.server(call_id, Party.COUNTER, 1_700_000_000.7)
    assert server.username == f"{1_700_000_000 + 4 * 3600}:{call_id}.counter"
    assert server.credential == turn_password("s" * 32, server.username)
    assert server.urls == ["turn:turn.example.fr:3478"]
    assert "s" * 32 not in repr(made)


# --- settings -----------------------------------------------------------------------------

TURN_URLS = ["turns:turn.example.fr:443?transport=tcp", "turn:turn.example.fr:3478"]


@pytest.mark.parametrize(
    "secret",
    [None, "", TURN_SECRET_PLACEHOLDER, "court"],
    ids=["absent", "vide", "exemple", "court"],
)
def test_a_turn_server_without_a_real_secret_is_refused_outside_demo_mode(
    secret: str | None,
) -> None:
    extra = {} if secret is None else {"turn_secret": secret}
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="sqlite://", secret_key=KEY, turn_urls=TURN_URLS, **extra)
    assert "GUICHET_TURN_SECRET" in str(caught.value)


def test_the_environment_sets_turn_and_the_secret_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Zr8vQ3wEoP1sLk9dN2mX7cT5yB4hJ6aF"
    monkeypatch.setenv("GUICHET_TURN_URLS", '["turns:turn.example.fr:443?transport=tcp"]')
    monkeypatch.setenv("GUICHET_TURN_SECRET", secret)
    monkeypatch.setenv("GUICHET_TURN_TTL_S", "7200")
    settings = Settings(database_url="sqlite://", secret_key=KEY)
    made = settings.turn_issuer()
    assert made is not None
    assert (made.urls, made.secret, made.ttl_s) == (
        ("turns:turn.example.fr:443?transport=tcp",),
        secret,
        7200,
    )
    assert secret not in repr(settings) + str(settings.model_dump()) + repr(made)


def test_demo_mode_takes_a_short_secret_and_no_turn_needs_none() -> None:
    demo = Settings(database_url="sqlite://", demo=True, turn_urls=TURN_URLS, turn_secret="demo")
    assert demo.turn_issuer() is not None
    assert Settings(database_url="sqlite://", secret_key=KEY).turn_issuer() is None


@pytest.mark.parametrize(
    "url",
    [
        "stun:turn.example.fr:3478",
        "turns:turn.example.fr:443?transport=udp",
        "turn:x y",
        "http://x",
    ],
)
def test_a_url_aiortc_would_drop_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="GUICHET_TURN_URLS"):
        Settings(database_url="sqlite://", secret_key=KEY, turn_urls=[url], turn_secret="s" * 32)


def test_a_static_turn_password_in_the_ice_servers_is_refused() -> None:
    static = sig.IceServer(urls=["turn:turn.example.fr:3478"], username="u", credential="p")
    with pytest.raises(ValidationError, match="GUICHET_TURN_URLS"):
        Settings(database_url="sqlite://", secret_key=KEY, ice_servers=[STUN, static])
    assert Settings(database_url="sqlite://", secret_key=KEY, ice_servers=[STUN]).ice_servers


# --- who receives them --------------------------------------------------------------------

ISSUER = TurnIssuer(("turn:turn.example.fr:3478?transport=tcp",), "s" * 32, 3600)


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async for w in make_world(db_url, ice_servers=[STUN], turn=ISSUER):
        with w.sessions.begin() as session:
            auth.upsert_user(session, "carole", "mot de passe long", role="agent", service="msa")
        with w.sessions() as session:
            w.agents["carole"] = session.scalars(
                select(User.id).where(User.username == "carole")
            ).one()
        yield w


def turn_of(servers: list[sig.IceServer]) -> sig.IceServer:
    (server,) = [s for s in servers if s.username is not None]
    return server


async def test_each_call_gives_its_two_parties_their_own_credentials_and_no_one_else(
    world: World,
) -> None:
    alice, bob, carole = world.agent("alice"), world.agent("bob"), world.agent("carole", "msa")
    for agent in (alice, bob, carole):
        await world.manager.agent_connected(agent)
    counter = world.counter()
    await world.manager.counter_connected(counter)
    welcome = await link(counter).expect(sig.Welcome)
    assert welcome.ice_servers == [STUN]  # long-lived: no TURN credentials in it
    call_id = uuid.uuid4()
    await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
    await link(counter).expect(sig.CallQueued)
    await world.manager.agent_message(alice, sig.Answer(call_id=call_id))

    mine = await link(alice).expect(sig.CallTaken)
    answered = await link(counter).expect(sig.CallAnswered)
    assert mine.by_me
    assert mine.ice_servers[0] == STUN
    assert answered.ice_servers[0] == STUN
    for_agent, for_counter = turn_of(mine.ice_servers), turn_of(answered.ice_servers)
    assert for_agent.username is not None
    assert for_counter.username is not None
    assert for_agent.username.endswith(f":{call_id}.agent")
    assert for_counter.username.endswith(f":{call_id}.counter")
    assert int(for_counter.username.split(":")[0]) == pytest.approx(time.time() + 3600, abs=60)
    for server in (for_agent, for_counter):
        assert server.credential == turn_password("s" * 32, server.username or "")

    others = await link(bob).expect(sig.CallTaken)
    assert not others.by_me
    assert others.ice_servers == []
    await world.manager.settled()
    leaked = [m for m in link(carole).drain() if for_agent.credential in m.model_dump_json()]
    assert leaked == []
    assert not any(isinstance(m, sig.CallTaken) for m in link(carole).drain())

    # A resume gives back the same credentials, to the same parties only.
    await world.manager.counter_disconnected(counter)
    again = world.counter()
    await world.manager.counter_connected(again)
    await world.manager.counter_message(again, sig.Resume(call_id=call_id))
    assert (await link(again).expect(sig.CallAnswered, skip=(sig.Welcome,))).ice_servers == (
        answered.ice_servers
    )
    await world.manager.agent_disconnected(alice)
    back = world.agent("alice")
    await world.manager.agent_connected(back)
    assert (await link(back).expect(sig.CallTaken)).ice_servers == mine.ice_servers


async def test_another_call_gets_other_credentials(world: World) -> None:
    alice = world.agent("alice")
    await world.manager.agent_connected(alice)
    usernames = set()
    for _ in range(2):
        counter = world.counter()
        await world.manager.counter_connected(counter)
        call_id = uuid.uuid4()
        await world.manager.counter_message(counter, sig.CallRequest(call_id=call_id))
        await world.manager.agent_message(alice, sig.Answer(call_id=call_id))
        answered = await link(counter).expect(sig.CallAnswered, skip=(sig.Welcome, sig.CallQueued))
        usernames.add(turn_of(answered.ice_servers).username)
        await world.manager.agent_message(
            alice, sig.Hangup(call_id=call_id, reason=sig.EndReason.HANGUP_AGENT)
        )
        await link(counter).expect(sig.CallEnded)
    assert len(usernames) == 2
