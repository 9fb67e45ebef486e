"""A private coturn (``turnserver``) for one test: TURN over UDP, TCP and TLS on free ports of
a loopback (or given) address, with the fleet server's shared-secret scheme.

Everything it reads or writes is in its work directory: its configuration, a TLS
certificate made at test time (the same openssl PKI as the secure broker: ``ca.pem`` trusts
it), its log, pid file and SQLite user database (unused with ``use-auth-secret``, but coturn
opens ``/var/lib/turn/turndb`` when none is given). No CLI, no NAT-discovery ports.

    with coturn(tmp_path) as turn:                # or the ``turn_server`` fixture
        settings = Settings(**turn.server_settings(), database_url=…, secret_key=…)
        turn.url("tcp")                           # "turn:127.0.0.1:PORT?transport=tcp"

aiortc (the counter) verifies ``turns:`` against Python's default CA store: set
``SSL_CERT_FILE`` to ``turn.ca_file`` in its process, or give it ``turn.url("tcp")`` first.
``turn_client`` is aioice's own TURN client (the one aiortc uses), for allocations by hand.

``deploy_coturn`` starts it from ``deploy/coturn/turnserver.conf`` itself instead, with only
addresses, ports, paths and the secret rewritten (the production refusals kept).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aioice import stun, turn

from tests.support.mosquitto import free_port
from tests.support.processes import stop_process
from tests.support.secure_broker import make_certificates

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
START_TIMEOUT_S = 10.0
REALM = "guichet.test"

Transport = Literal["udp", "tcp", "tls"]


@dataclass
class Coturn:
    """A running turnserver: where it listens, its secret and realm, its log."""

    workdir: Path
    host: str
    port: int  # TURN over UDP and TCP
    tls_port: int  # TURN over TLS (TCP)
    secret: str = field(repr=False)
    realm: str
    process: subprocess.Popen[bytes]

    @property
    def ca_file(self) -> Path:
        """The CA that signed the TLS listener's certificate (for 127.0.0.1 and localhost)."""
        return self.workdir / "certs" / "ca.pem"

    @property
    def log_file(self) -> Path:
        return self.workdir / "turnserver.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def url(self, transport: Transport) -> str:
        if transport == "tls":
            return f"turns:{self.host}:{self.tls_port}?transport=tcp"
        return f"turn:{self.host}:{self.port}?transport={transport}"

    def address(self, transport: Transport) -> tuple[str, int]:
        return (self.host, self.tls_port if transport == "tls" else self.port)

    def server_settings(
        self, transports: tuple[Transport, ...] = ("tls", "tcp", "udp"), *, ttl_s: int = 3600
    ) -> dict[str, object]:
        """The fleet server's settings for this TURN server (``Settings(**these, …)``): its
        URLs in this order (aiortc, the counter, uses the first), the shared secret, a TTL."""
        return {
            "turn_urls": [self.url(t) for t in transports],
            "turn_secret": self.secret,
            "turn_ttl_s": ttl_s,
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the TLS listener (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def local_config(workdir: Path, host: str, port: int, tls_port: int, secret: str) -> str:
    """A test relay: the production scheme (shared secret, realm, fingerprint, TLS without
    1.0/1.1) and peers on loopback allowed, so two local peers can relay to each other."""
    return "\n".join(
        [
            f"listening-ip={host}",
            f"relay-ip={host}",
            f"listening-port={port}",
            f"tls-listening-port={tls_port}",
            "no-dtls",
            "no-rfc5780",
            "use-auth-secret",
            f"static-auth-secret={secret}",
            f"realm={REALM}",
            "fingerprint",
            "allow-loopback-peers",
            "no-multicast-peers",
            "no-tlsv1",
            "no-tlsv1_1",
            "no-cli",
            "verbose",  # each allocation's user in the log: tests check who allocated
            *_private_files(workdir),
        ]
    )


def deploy_config(
    shipped: str, workdir: Path, host: str, port: int, tls_port: int, secret: str
) -> str:
    """``deploy/coturn/turnserver.conf`` with this test's address, ports, files and secret;
    every other directive kept (the denied peers, quotas, TLS settings)."""
    lines: list[str] = []
    for line in shipped.splitlines():
        key = line.split("=", 1)[0].strip()
        replaced = {
            "listening-ip": f"listening-ip={host}",
            "relay-ip": f"relay-ip={host}",
            "listening-port": f"listening-port={port}",
            "tls-listening-port": f"tls-listening-port={tls_port}",
            "static-auth-secret": f"static-auth-secret={secret}",
            "cert": None,
            "pkey": None,
            "syslog": None,
        }
        if key in replaced:
            new = replaced[key]
            if new is not None:
                lines.append(new)
        else:
            lines.append(line)
    return "\n".join([*lines, *_private_files(workdir)])


def _private_files(workdir: Path) -> list[str]:
    """Every file coturn reads or writes, inside ``workdir``."""
    return [
        f"cert={workdir}/certs/server.pem",
        f"pkey={workdir}/certs/server.key",
        f"log-file={workdir}/turnserver.log",
        "simple-log",
        "no-stdout-log",
        f"pidfile={workdir}/turnserver.pid",
        f"userdb={workdir}/turndb",
    ]


@contextmanager
def coturn(
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    secret: str | None = None,
    shipped: str | None = None,
    prefix: Sequence[str] = (),
) -> Iterator[Coturn]:
    """Start turnserver (the test configuration, or ``shipped`` rewritten); stop it after.

    ``prefix`` runs it through another command, e.g. ``("ip", "netns", "exec", "router")``
    for a relay inside a shaped network's namespace; ``host`` must then be reachable from
    this process, which checks that it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    make_certificates(workdir / "certs")
    secret = secret or secrets.token_urlsafe(32)
    port, tls_port = _free_udp_tcp_port(host), free_port()
    if shipped is None:
        text = local_config(workdir, host, port, tls_port, secret)
    else:
        text = deploy_config(shipped, workdir, host, port, tls_port, secret)
    conf = workdir / "turnserver.conf"
    conf.write_text(text + "\n", encoding="utf-8")
    process = subprocess.Popen(
        [*prefix, TURNSERVER, "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    turn = Coturn(workdir, host, port, tls_port, secret, REALM, process)
    try:
        _wait_ready(turn)
        yield turn
    finally:
        stop_process(process)


@contextmanager
def deploy_coturn(workdir: Path, *, host: str = "127.0.0.1") -> Iterator[Coturn]:
    """turnserver from ``deploy/coturn/turnserver.conf`` itself (see ``deploy_config``)."""
    with coturn(workdir, host=host, shipped=DEPLOY_CONF.read_text(encoding="utf-8")) as turn:
        yield turn


class _Closing:
    """Knows when aioice's TURN client lost its connection (aioice tells only a receiver it
    has after a successful allocation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        self.closed.set()


class _UdpClient(_Closing, turn.TurnClientUdpProtocol):
    pass


class _TcpClient(_Closing, turn.TurnClientTcpProtocol):
    pass


@asynccontextmanager
async def turn_client(
    server: Coturn, transport: Transport, username: str | None, password: str | None
) -> AsyncIterator[turn.TurnClientUdpProtocol | turn.TurnClientTcpProtocol]:
    """aioice's TURN client (aiortc's), connected to ``server`` but not yet allocated
    (``await client.connect()``); its allocation deleted and its socket closed after."""
    loop = asyncio.get_running_loop()
    address = server.address(transport)
    options: dict[str, Any] = {"username": username, "password": password, "lifetime": 600}
    client: _UdpClient | _TcpClient
    if transport == "udp":
        _, client = await loop.create_datagram_endpoint(
            lambda: _UdpClient(address, channel_refresh_time=500, **options),
            remote_addr=address,
        )
    else:
        context = server.ssl_context() if transport == "tls" else None
        _, client = await loop.create_connection(
            lambda: _TcpClient(address, channel_refresh_time=500, **options),
            *address,
            ssl=context,
        )
    try:
        yield client
    finally:
        if client.relayed_address is not None:
            await client.delete()  # closes the socket too
        else:
            client.transport.close()
        async with asyncio.timeout(5):
            await client.closed.wait()


def _free_udp_tcp_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (TURN listens on both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def _wait_ready(turn: Coturn) -> None:
    """Until a STUN binding answers on UDP and both TCP listeners accept, or it died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pending = {"udp", "tcp", "tls"}
    while pending and time.monotonic() < deadline:
        if turn.process.poll() is not None:
            raise RuntimeError(f"turnserver exited ({turn.process.returncode}):\n{turn.log()}")
        for transport in sorted(pending):
            if _answers(turn, transport):
                pending.discard(transport)
        if pending:
            time.sleep(0.05)
    if pending:
        raise TimeoutError(f"turnserver not ready on {sorted(pending)}:\n{turn.log()}")


def _answers(turn: Coturn, transport: str) -> bool:
    address = turn.address("tls" if transport == "tls" else "udp")
    if transport != "udp":
        try:
            with socket.create_connection(address, timeout=0.2):
                return True
        except OSError:
            return False
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.2)
        try:
            udp.sendto(bytes(request), address)
            reply = stun.parse_message(udp.recv(2048))
        except (OSError, ValueError):
            return False
    return reply.transaction_id == request.transaction_id
