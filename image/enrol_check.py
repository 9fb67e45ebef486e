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
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from image import check
from image.enrol_rig import HOST_IN_VM, Fleet, broker, fleet_server, make_pki

APPROVE_AFTER_S = 360.0  # after power-on: longer than guichet.service's TimeoutStartSec=300
KERNEL_ARGS = check.KERNEL_ARGS.replace(
    "guichet-image-check.service", "guichet-enrol-check.service"
)
SCREEN_RE = re.compile(r"GUICHET-ECRAN: (\{.*\})")
CARD_RE = re.compile(r"GUICHET-CARTE: ")
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


def screen_texts(serial_text: str) -> list[str]:
    """What the counter's screen said, in order, from the VM's serial log."""
    said = []
    for match in SCREEN_RE.finditer(serial_text):
        try:
            said.append(str(json.loads(match.group(1)).get("text", "")))
        except ValueError:
            continue  # a line cut by the console: the next one says it again
    return said


def codes_shown(texts: list[str]) -> set[str]:
    """The request codes the screen showed ("…, code K7MP4X")."""
    return {t.rsplit(" ", 1)[-1] for t in texts if ", code " in t}


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
    return check.conclude(
        "enrol-check", result, args.out / "enrol-check.json", workdir, keep=args.keep
    )


if __name__ == "__main__":
    sys.exit(main())
