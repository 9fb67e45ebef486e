"""``./run enrol-check``: the technician's flow on the built image, end to end, in qemu.

Against a real Mosquitto started from ``deploy/mosquitto/mosquitto.conf`` (TLS only, a
private CA made here by openssl, empty ``passwd``/``acl`` files that the server fills in)
and the real fleet server over HTTPS (same CA), the image boots with a ``guichet.toml``
holding only the technician's documented keys, a token and ``certificat_ca``:

1. **late approval** — pending on ``/admin/enrolment`` (with the code the counter's screen
   shows); approved ``APPROVE_AFTER_S`` after power-on (longer than the unit's start
   timeout), then "online"; the screen showed one code only (no second request);
2. **power cut** — pending, then the VM is killed, booted again (same disk): the same code
   is shown again, approval → "online";
3. **spent token** — a token already used: the French refusal on the screen's text (the
   serial console) and ``GUICHET-ERREUR.txt`` on the card.

The times (power-on → pending, approval → online) are printed and kept in
``var/image/out/enrol-check.json``. The screen's text reaches the serial console through
the inert ``guichet-enrol-check.service`` (``systemd.wants=`` on the kernel command line).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from image import check

DEPLOY_CONF = check.PROJECT_DIR / "deploy" / "mosquitto" / "mosquitto.conf"
APPROVE_AFTER_S = 360.0  # after power-on: longer than guichet.service's TimeoutStartSec=300
SERVER_USER = "guichet-fleet-server"
ADMIN = "admin-verification"
HOST_IN_VM = "10.0.2.2"  # qemu user-net's name for this machine's loopback
KERNEL_ARGS = check.KERNEL_ARGS.replace(
    "guichet-image-check.service", "guichet-enrol-check.service"
)
SCREEN_RE = re.compile(r"GUICHET-ECRAN: (\{.*\})")
CARD_RE = re.compile(r"GUICHET-CARTE: ")
PENDING_ROW_RE = re.compile(
    r'data-request="(\d+)" data-device-id="([^"]+)"><td><strong>'
    r"<code data-enrolment-code>([A-Z0-9]{6})</code>"
)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SPENT_MESSAGE = "jeton d'enrôlement invalide, expiré ou épuisé"


def boot_config(device_id: str, token: str, mqtt_port: int, https_port: int) -> str:
    """The technician's guichet.toml: documented keys, a token, the Pays's CA file."""
    return f"""# guichet.toml de ./run enrol-check
[guichet]
site = "Vérification de l'enrôlement"
nom = "{device_id}"
identifiant = "{device_id}"

[flotte]
adresse = "mqtts://{HOST_IN_VM}:{mqtt_port}"
site_web = "https://{HOST_IN_VM}:{https_port}"
jeton = "{token}"
certificat_ca = "ca-pays.pem"

[essai]
materiel_simule = true
"""


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


def screen_texts(serial_text: str) -> list[str]:
    """What the counter's screen said, in order, from the VM's serial log."""
    said = []
    for match in SCREEN_RE.finditer(serial_text):
        try:
            said.append(str(json.loads(match.group(1)).get("text", "")))
        except ValueError:
            continue  # a line cut by the console: the next one says it again
    return said


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


def codes_shown(texts: list[str]) -> set[str]:
    """The request codes the screen showed ("…, code K7MP4X")."""
    return {t.rsplit(" ", 1)[-1] for t in texts if ", code " in t}


def make_pki(directory: Path) -> None:
    """The Pays's CA and one server certificate (broker and HTTPS) valid for the host and
    for the VM's view of it."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)  # noqa: S603,S607

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Pays de verification CA", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=flotte",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (directory / "san.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,IP:{HOST_IN_VM},DNS:localhost\n", encoding="utf-8"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip


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

    def client(self) -> Any:
        import httpx

        client = httpx.Client(base_url=self.url, verify=str(self.ca_file), timeout=30)
        page = client.get("/login").text
        csrf = CSRF_RE.search(page)
        assert csrf, "no login form"
        data = {"username": ADMIN, "password": self.password, "csrf_token": csrf.group(1)}
        client.post("/login", data=data).raise_for_status()
        return client

    def token(self, uses: int = 1) -> str:
        from fleet_server.db import make_engine, make_session_factory
        from fleet_server.security import enrolment

        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine).begin() as session:
                return enrolment.create_token(
                    session, site="Vérification", valid_hours=4, max_uses=uses,
                    pre_approved=False, actor="enrol-check",
                )  # fmt: skip
        finally:
            engine.dispose()

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
        from fleet_server.db import make_engine, make_session_factory
        from fleet_server.models import Device
        from guichet.contract import DeviceState

        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                device = session.get(Device, device_id)
                return device is not None and device.state == DeviceState.ONLINE
        finally:
            engine.dispose()


@contextmanager
def fleet_server(workdir: Path, mqtt_port: int) -> Iterator[Fleet]:
    import uvicorn

    from fleet_server.app import create_app
    from fleet_server.db import make_engine, make_session_factory, migrate
    from fleet_server.security import auth
    from fleet_server.settings import Settings

    certs = workdir / "broker" / "certs"
    database_url = f"sqlite:///{workdir / 'fleet.sqlite3'}"
    migrate(database_url)
    port = check.free_port()
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


def prepare(image: Path, workdir: Path, name: str, toml: str) -> Path:
    disk = check.prepare_disk(image, workdir / f"sd-{name}.img", toml)
    ca = workdir / "broker" / "certs" / "ca.pem"
    subprocess.run(  # noqa: S603
        ["mcopy", "-o", "-i", f"{disk}@@{check.BOOT_OFFSET}", str(ca), "::/ca-pays.pem"],  # noqa: S607
        check=True,
    )
    return disk


@dataclass
class Watch:
    """What one boot has shown so far: the pending row, the screen, the card, "online"."""

    fleet: Fleet
    device_id: str
    serial: Path
    started: float = field(default_factory=time.monotonic)
    pending: tuple[int, str, str] | None = None
    pending_at: float | None = None
    approved_at: float | None = None
    online_at: float | None = None

    def screens(self) -> list[str]:
        text = self.serial.read_text(errors="replace") if self.serial.exists() else ""
        return screen_texts(text)

    def card_written(self) -> bool:
        text = self.serial.read_text(errors="replace") if self.serial.exists() else ""
        return bool(CARD_RE.search(text))

    def look(self) -> None:
        if self.pending is None:
            rows = [r for r in self.fleet.pending() if r[1] == self.device_id]
            if rows:
                self.pending, self.pending_at = rows[0], time.monotonic()
        waiting = self.approved_at is not None and self.online_at is None
        if waiting and self.fleet.online(self.device_id):
            self.online_at = time.monotonic()

    def approve(self) -> None:
        assert self.pending is not None
        self.fleet.approve(self.pending[0])
        self.approved_at = time.monotonic()

    def times(self) -> dict[str, float | None]:
        def since(t: float | None, t0: float | None) -> float | None:
            return None if t is None or t0 is None else round(t - t0, 1)

        return {
            "power_on_to_pending_s": since(self.pending_at, self.started),
            "power_on_to_approval_s": since(self.approved_at, self.started),
            "approval_to_online_s": since(self.online_at, self.approved_at),
        }


def boot(out: Path, disk: Path, serial: Path, until: Callable[[], bool]) -> None:
    """Power on, call ``until`` every second until it says stop; then cut the power."""
    check.boot_and_wait(check.qemu_argv(out, disk, serial, KERNEL_ARGS), serial, until)


def late_approval(
    image: Path, out: Path, workdir: Path, fleet: Fleet, ports: tuple[int, int]
) -> dict[str, object]:
    device = "enrol-tardif"
    disk = prepare(image, workdir, "tardif", boot_config(device, fleet.token(), *ports))
    watch = Watch(fleet, device, workdir / "serial-tardif.log")

    def step() -> bool:
        watch.look()
        due = time.monotonic() - watch.started >= APPROVE_AFTER_S
        if watch.pending is not None and watch.approved_at is None and due:
            watch.approve()
        return watch.online_at is not None

    boot(out, disk, watch.serial, step)
    codes = codes_shown(watch.screens())
    shown = watch.pending[2] if watch.pending else None
    return {
        "passed": watch.online_at is not None and codes == {shown},
        **watch.times(),
        "code_on_dashboard": shown,
        "codes_on_screen": sorted(codes),
    }


def power_cut(
    image: Path, out: Path, workdir: Path, fleet: Fleet, ports: tuple[int, int]
) -> dict[str, object]:
    device = "enrol-coupure"
    disk = prepare(image, workdir, "coupure", boot_config(device, fleet.token(), *ports))
    first = Watch(fleet, device, workdir / "serial-coupure-1.log")

    def until_pending() -> bool:
        first.look()
        return first.pending is not None and bool(codes_shown(first.screens()))

    boot(out, disk, first.serial, until_pending)  # then the power is cut
    second = Watch(fleet, device, workdir / "serial-coupure-2.log")

    def until_online() -> bool:
        second.look()
        back = codes_shown(second.screens())  # the agent is up again, waiting
        if second.pending is not None and second.approved_at is None and back:
            second.approve()
        return second.online_at is not None

    boot(out, disk, second.serial, until_online)
    before, after = codes_shown(first.screens()), codes_shown(second.screens())
    same = len(before) == 1 and before == after
    return {
        "passed": second.online_at is not None and same,
        "first_boot": first.times(),
        "after_power_cut": second.times(),
        "codes_before_and_after_the_cut": [sorted(before), sorted(after)],
    }


def spent_token(
    image: Path, out: Path, workdir: Path, fleet: Fleet, ports: tuple[int, int]
) -> dict[str, object]:
    import httpx

    token = fleet.token(uses=1)
    body = {"token": token, "device_id": "autre-guichet", "hardware_id": "serial:0000cafe"}
    httpx.post(f"{fleet.url}/api/v1/enrol", json=body, verify=str(fleet.ca_file)).raise_for_status()
    device = "enrol-jeton-use"
    disk = prepare(image, workdir, "jeton-use", boot_config(device, token, *ports))
    watch = Watch(fleet, device, workdir / "serial-jeton-use.log")

    def refused_and_written() -> bool:
        return any(SPENT_MESSAGE in t for t in watch.screens()) and watch.card_written()

    boot(out, disk, watch.serial, refused_and_written)
    on_card = check.fat_file(disk, "GUICHET-ERREUR.txt")
    on_screen = [t for t in watch.screens() if SPENT_MESSAGE in t]
    return {
        "passed": bool(on_screen) and SPENT_MESSAGE in on_card and "[flotte] jeton" in on_card,
        "power_on_to_message_s": round(time.monotonic() - watch.started, 1),
        "screen": on_screen[:1],
        "card": on_card.strip().splitlines()[:3],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image.enrol_check")
    parser.add_argument("--out", type=Path, default=check.PROJECT_DIR / "var" / "image" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the VMs' disks and logs")
    args = parser.parse_args(argv)
    image = args.out / "guichet-proche.img"
    if not image.exists():
        sys.stderr.write(f"enrol-check: {image} is missing: run ./run image first\n")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="enrol-check-", dir=args.out.parent))
    workdir.chmod(0o755)
    make_pki(workdir / "broker" / "certs")
    try:
        with broker(workdir / "broker") as mqtt_port, fleet_server(workdir, mqtt_port) as fleet:
            https_port = int(fleet.url.rsplit(":", 1)[1])
            ports = (mqtt_port, https_port)
            result = {
                "late_approval": late_approval(image, args.out, workdir, fleet, ports),
                "power_cut_while_pending": power_cut(image, args.out, workdir, fleet, ports),
                "spent_token": spent_token(image, args.out, workdir, fleet, ports),
            }
    except check.VmDiedError as exc:
        sys.stderr.write(f"enrol-check: ÉCHEC — {exc}\nlogs: {workdir}\n")
        return 1
    report = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    sys.stdout.write(report)
    (args.out / "enrol-check.json").write_text(report, encoding="utf-8")
    passed = all(bool(phase["passed"]) for phase in result.values())
    if passed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        sys.stdout.write(f"logs: {workdir}\n")
    sys.stdout.write("enrol-check: " + ("réussi\n" if passed else "ÉCHEC\n"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
