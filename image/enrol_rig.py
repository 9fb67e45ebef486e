"""The infrastructure ``./run enrol-check`` runs the image against: a private CA, Mosquitto
from ``deploy/`` with TLS, and the real fleet server over HTTPS in a thread, with an admin
client that reads and approves the pending enrolment requests as a person would."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from image import check

DEPLOY_CONF = check.PROJECT_DIR / "deploy" / "mosquitto" / "mosquitto.conf"
SERVER_USER = "guichet-fleet-server"
ADMIN = "admin-verification"
HOST_IN_VM = "10.0.2.2"  # qemu user-net's name for this machine's loopback
PENDING_ROW_RE = re.compile(
    r'data-request="(\d+)" data-device-id="([^"]+)"><td><strong>'
    r"<code data-enrolment-code>([A-Z0-9]{6})</code>"
)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def mosquitto_conf(shipped: str, workdir: Path, port: int) -> str:
    """The shipped configuration with this check's paths and port (every directive kept)."""
    return (
        shipped.replace("/etc/mosquitto/guichet/", f"{workdir}/files/")
        .replace("/etc/mosquitto/certs/", f"{workdir}/certs/")
        .replace("/run/mosquitto/mosquitto.pid", f"{workdir}/run/mosquitto.pid")
        .replace("/var/lib/mosquitto/", f"{workdir}/data/")
        .replace("log_dest syslog", f"log_dest file {workdir}/mosquitto.log")
        .replace("\nlistener 8883\n", f"\nlistener {port} 127.0.0.1\n")
    )


def pending_rows(page: str) -> list[tuple[int, str, str]]:
    """(request id, device id, code) of each pending row of ``/admin/enrolment``."""
    return [(int(i), device, code) for i, device, code in PENDING_ROW_RE.findall(page)]


def wait_port(port: int, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# The extensions Python 3.13's default TLS context (VERIFY_X509_STRICT, the counter's Python
# on the image; appliance/fleet/tls.py asks for it on every version) requires: a CA with
# critical basicConstraints and keyUsage, a leaf with its authority's key identifier.
CA_EXTENSIONS = ("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign")
LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid,issuer",
)


def make_pki(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", HOST_IN_VM)) -> None:
    """A CA (``ca.pem``, the Pays's) and one server certificate (``server.pem``/``.key``,
    broker and HTTPS) for ``hosts`` and localhost, as a real CA would issue them."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)  # noqa: S603,S607

    addext = [arg for ext in CA_EXTENSIONS for arg in ("-addext", ext)]
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Pays de verification CA", *addext, "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=flotte",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    names = ",".join([*(f"IP:{h}" for h in hosts), "DNS:localhost"])
    (directory / "server.ext").write_text(
        "\n".join([*LEAF_EXTENSIONS, f"subjectAltName={names}"]) + "\n", encoding="utf-8"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
        "-CAcreateserial", "-extfile", "server.ext", "-out", "server.pem")  # fmt: skip


@contextmanager
def broker(workdir: Path) -> Iterator[int]:
    """Mosquitto from deploy/, empty passwd and acl (the server fills them in); its files,
    pid directory included, belong to its user, as the README says."""
    port = check.free_port()
    for sub in ("files", "data", "run"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    (workdir / "files" / "passwd").write_text("")
    (workdir / "files" / "acl").write_text("")
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(DEPLOY_CONF.read_text(), workdir, port), encoding="utf-8")
    user = pwd.getpwnam("mosquitto")
    for path in [workdir, *workdir.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    process = subprocess.Popen(["mosquitto", "-c", str(conf)])  # noqa: S603,S607
    try:
        wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Fleet:
    """The real fleet server (``create_app``) over HTTPS in a thread, and an admin client."""

    url: str
    ca_file: Path
    database_url: str
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @contextmanager
    def client(self) -> Iterator[Any]:
        """An HTTPS client logged in as the check's administrator."""
        import httpx

        with httpx.Client(
            base_url=self.url, verify=str(self.ca_file), timeout=30, follow_redirects=True
        ) as client:
            page = client.get("/login").text
            csrf = CSRF_RE.search(page)
            assert csrf, "no login form"
            data = {"username": ADMIN, "password": self.password, "csrf_token": csrf.group(1)}
            client.post("/login", data=data).raise_for_status()
            yield client

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A database session on the server's database, committed at the end."""
        from fleet_server.db import make_engine, make_session_factory

        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine).begin() as session:
                yield session
        finally:
            engine.dispose()

    def token(self, uses: int = 1, *, pre_approved: bool = False) -> str:
        from fleet_server.security import enrolment

        with self.session() as session:
            return enrolment.create_token(
                session, site="Vérification", valid_hours=4, max_uses=uses,
                pre_approved=pre_approved, actor="enrol-check",
            )  # fmt: skip

    def pending(self) -> list[tuple[int, str, str]]:
        with self.client() as client:
            return pending_rows(client.get("/admin/enrolment").text)

    def approve(self, request_id: int) -> None:
        with self.client() as client:
            csrf = CSRF_RE.search(client.get("/admin/enrolment").text)
            assert csrf
            answer = client.post(
                f"/admin/enrolment/requests/{request_id}",
                data={"decision": "approve", "csrf_token": csrf.group(1)},
            )
            answer.raise_for_status()

    def online(self, device_id: str) -> bool:
        from fleet_server.models import Device
        from guichet.contract import DeviceState

        with self.session() as session:
            device = session.get(Device, device_id)
            return device is not None and device.state == DeviceState.ONLINE


@contextmanager
def fleet_server(workdir: Path, mqtt_port: int, **settings_extra: Any) -> Iterator[Fleet]:
    """``settings_extra``: more of the server's ``Settings`` (``public_url`` is this server's
    own address as the VM reaches it, when asked for: ``public_url=True``)."""
    import uvicorn

    from fleet_server.app import create_app
    from fleet_server.db import make_engine, make_session_factory, migrate
    from fleet_server.security import auth
    from fleet_server.settings import Settings

    certs = workdir / "broker" / "certs"
    database_url = f"sqlite:///{workdir / 'fleet.sqlite3'}"
    migrate(database_url)
    port = check.free_port()
    if settings_extra.get("public_url") is True:
        settings_extra["public_url"] = f"https://{HOST_IN_VM}:{port}"
    fleet = Fleet(f"https://127.0.0.1:{port}", certs / "ca.pem", database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        auth.upsert_user(session, ADMIN, fleet.password, role="admin")
    engine.dispose()
    settings = Settings(
        database_url=database_url,
        secret_key=secrets.token_urlsafe(32),
        mqtt_url=f"mqtts://127.0.0.1:{mqtt_port}",
        mqtt_ca_file=str(certs / "ca.pem"),
        mqtt_username=SERVER_USER,
        mqtt_password=secrets.token_urlsafe(24),
        broker_files_dir=workdir / "broker" / "files",
        broker_pid_file=workdir / "broker" / "run" / "mosquitto.pid",
        **settings_extra,
    )
    config = uvicorn.Config(
        create_app(settings), host="0.0.0.0", port=port, log_level="warning",  # noqa: S104 - the VM reaches it as 10.0.2.2
        ssl_certfile=str(certs / "server.pem"), ssl_keyfile=str(certs / "server.key"),
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fleet-server", daemon=True)
    thread.start()
    wait_port(port)
    try:
        yield fleet
    finally:
        server.should_exit = True
        thread.join(timeout=15)
