"""Real receivers for the notifications' tests: an SMTP server (aiosmtpd, in its own thread)
that requires STARTTLS and a login, with a certificate from a CA made at test time; and a
webhook receiver (the standard library's HTTP server) that can fail its first requests."""

from __future__ import annotations

import email
import email.policy
import http.server
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from image.enrol_rig import make_pki
from tests.support.mosquitto import free_port

SMTP_USER = "alertes@pays.example"
SMTP_PASSWORD = "mot-de-passe-du-relais-8Hq2"
WAIT_S = 20.0


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class Inbox:
    """What the SMTP server accepted, and a way to wait for more."""

    messages: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    logins_refused: int = 0

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = WAIT_S
    ) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.messages), timeout), self.messages

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        got = Received(
            envelope.mail_from, list(envelope.rcpt_tos), message, session.ssl is not None, login
        )
        with self.inbox.changed:
            self.inbox.messages.append(got)
            self.inbox.changed.notify_all()
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    ca_file: Path
    inbox: Inbox


@contextmanager
def smtp_server(workdir: Path) -> Iterator[SmtpServer]:
    """SMTP on a free loopback port: STARTTLS required, then AUTH LOGIN/PLAIN required."""
    make_pki(workdir, hosts=("127.0.0.1",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(workdir / "server.pem", workdir / "server.key")
    inbox = Inbox()

    def authenticator(
        _server: Any, _session: Any, _envelope: Any, _mech: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if not ok:
            inbox.logins_refused += 1
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    port = free_port()
    controller = Controller(
        _Handler(inbox),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield SmtpServer(port, workdir / "ca.pem", inbox)
    finally:
        controller.stop()


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class WebhookReceiver:
    url: str
    hooks: list[Hook]
    changed: threading.Condition
    fail_first: list[int]  # [n]: answer 500 to the next n requests

    def wait_for(self, predicate: Callable[[list[Hook]], bool], timeout: float = WAIT_S) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.hooks), timeout), self.hooks


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    hooks: list[Hook] = []
    changed = threading.Condition()
    fail_first = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            code = 200
            with changed:
                if fail_first[0] > 0:
                    fail_first[0] -= 1
                    code = 500
                hooks.append(Hook(self.path, dict(self.headers.items()), body, code))
                changed.notify_all()
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield WebhookReceiver(f"http://127.0.0.1:{port}/alertes", hooks, changed, fail_first)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def eventually(check: Callable[[], bool], timeout: float = WAIT_S, step: float = 0.05) -> None:
    """For database state the worker writes after a send: look until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(step)
