"""``./run image-check``: boot the built image in ``qemu-system-aarch64 -M virt`` and wait for
the counter to say "online" to a broker on this machine.

1. A private Mosquitto on a free port on 127.0.0.1 (qemu's user network reaches the host's
   loopback as 10.0.2.2).
2. A copy of the image, one GiB larger (first boot must grow the data partition), with a
   test ``guichet.toml`` written into its FAT partition by mtools (no mount).
3. The image's own kernel and initramfs booted with ``systemd.wants=`` pulling in the inert
   check unit, which verifies the read-only root from inside and prints a verdict on the
   serial console.
4. Pass when the counter's status "online" arrived (subscribed on the host) *and* the
   verdict is OK; the time from power-on to "online" is printed. The FAT copy is then read
   back to check that first boot removed the password from it.
5. A second boot, from a fresh copy with a wrong ``guichet.toml`` (Wi-Fi without a network
   name): passes when the counter stayed stopped, the French reason was on the console and
   ``GUICHET-ERREUR.txt`` is on the card.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from guichet import contract
from image.builder.assemble import FIRST_MIB, PARTUUIDS

PROJECT_DIR = Path(__file__).resolve().parent.parent
BOOT_OFFSET = FIRST_MIB * 2**20
GROW_BY = "+1G"
BOOT_TIMEOUT_S = 1200.0  # software emulation of 2 cores on 2 cores: minutes, not seconds
VERDICT_RE = re.compile(r"GUICHET-CHECK: (OK|ECHEC)([^\r\n]*)")
DEVICE_ID = "image-check"
TEST_PASSWORD = "mot-de-passe-de-verification"  # noqa: S105 - a test value, checked for removal
KERNEL_ARGS = (
    f"root=PARTUUID={PARTUUIDS['root-a']} ro console=ttyAMA0 net.ifnames=0"
    " systemd.wants=guichet-image-check.service"
)


def test_boot_config(port: int) -> str:
    return f"""# guichet.toml de ./run image-check
[guichet]
site = "Vérification de l'image"
nom = "Machine virtuelle"
identifiant = "{DEVICE_ID}"

[flotte]
adresse = "mqtt://10.0.2.2:{port}"
utilisateur = "{DEVICE_ID}"
mot_de_passe = "{TEST_PASSWORD}"

[reseau]
type = "ethernet"

[essai]
materiel_simule = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    """A private, anonymous Mosquitto for this check only."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Broker:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "user root\nlog_dest stderr\n",
            encoding="utf-8",
        )
        log = (self.workdir / "mosquitto.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            ["mosquitto", "-c", str(conf)],  # noqa: S607
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


class OnlineWatcher:
    """Subscribes to every counter's status; notes when ours says "online"."""

    def __init__(self, port: int) -> None:
        self.online = threading.Event()
        self.online_at: float | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="image-check-observer")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(contract.subscription_all(contract.Kind.STATUS), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            status = contract.decode(contract.Kind.STATUS, bytes(message.payload))
        except ValueError:
            return
        if isinstance(status, contract.Status) and status.state is contract.Presence.ONLINE:
            self.online_at = time.monotonic()
            self.online.set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def prepare_disk(image: Path, disk: Path, boot_config: str) -> Path:
    """A sparse copy of the image, 1 GiB larger, with ``boot_config`` as its guichet.toml."""
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)  # noqa: S603,S607
    subprocess.run(["truncate", "-s", GROW_BY, str(disk)], check=True)  # noqa: S603,S607
    toml = disk.with_suffix(".toml")
    toml.write_text(boot_config, encoding="utf-8")
    subprocess.run(  # noqa: S603
        ["mcopy", "-o", "-i", f"{disk}@@{BOOT_OFFSET}", str(toml), "::/guichet.toml"],  # noqa: S607
        check=True,
    )
    return disk


def qemu_argv(
    out: Path,
    disk: Path,
    serial: Path,
    kernel_args: str = KERNEL_ARGS,
    *,
    kernel: Path | None = None,
    initrd: Path | None = None,
) -> list[str]:
    """The VM; its kernel and initramfs are the build's (``out``) unless given."""
    kernel = kernel or sorted(out.glob("vmlinuz-*"))[-1]
    initrd = initrd or sorted(out.glob("initrd.img-*"))[-1]
    return [
        "qemu-system-aarch64",
        "-M",
        "virt",
        "-cpu",
        "cortex-a72",
        "-smp",
        "2",
        "-m",
        "2048",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{serial}",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        kernel_args,
        "-drive",
        f"file={disk},format=raw,if=virtio",
        "-nic",
        "user,model=virtio-net-pci",
    ]


def verdict(serial: Path) -> tuple[str, str] | None:
    text = serial.read_text(encoding="utf-8", errors="replace") if serial.exists() else ""
    match = VERDICT_RE.search(text)
    return (match.group(1), match.group(2).strip()) if match else None


class VmDiedError(RuntimeError):
    """qemu stopped on its own with an error (not a power-off): its stderr says why."""


def boot_and_wait(argv: list[str], serial: Path, done: Callable[[], bool]) -> float:
    """Run the VM until ``done()`` or it powers off; return when it was powered on.

    qemu's stderr goes to ``<serial>.qemu-stderr``; when qemu exits with an error (a missing
    ROM, a bad option, no KVM/TCG memory) it is shown and ``VmDiedError`` raised.
    """
    stderr_path = serial.with_name(serial.name + ".qemu-stderr")
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        vm = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)  # noqa: S603
    exited: int | None = None
    try:
        while time.monotonic() - started < BOOT_TIMEOUT_S:
            if done():
                break
            exited = vm.poll()
            if exited is not None:  # powered off (the verdict is in), or it died
                break
            time.sleep(1.0)
    finally:
        vm.terminate()
        try:
            vm.wait(timeout=10)
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.wait()
    said = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    if said and exited is not None:  # qemu stopped by itself (not by our terminate): why
        sys.stderr.write(f"image-check: qemu said:\n{said}\n")
    if exited not in (None, 0):
        raise VmDiedError(f"qemu exited with status {exited}: {said or '(nothing on stderr)'}")
    return started


def fat_file(disk: Path, name: str) -> str:
    """A file of the disk's FAT partition, read with mtools ("" when absent)."""
    shown = subprocess.run(  # noqa: S603
        ["mtype", "-i", f"{disk}@@{BOOT_OFFSET}", f"::/{name}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else ""


def secrets_removed(disk: Path) -> bool:
    shown = fat_file(disk, "guichet.toml")
    return TEST_PASSWORD not in shown and 'mot_de_passe = ""' in shown


def check_valid(image: Path, out: Path, workdir: Path) -> dict[str, object]:
    """A good guichet.toml: the counter comes up, says "online"; read-only root inside."""
    serial = workdir / "serial-valide.log"
    with Broker(workdir) as broker:
        watcher = OnlineWatcher(broker.port)
        disk = prepare_disk(image, workdir / "sd-valide.img", test_boot_config(broker.port))
        started = boot_and_wait(
            qemu_argv(out, disk, serial),
            serial,
            lambda: watcher.online.is_set() and verdict(serial) is not None,
        )
        watcher.close()
    seen = verdict(serial)
    online_s = None if watcher.online_at is None else round(watcher.online_at - started, 1)
    removed = secrets_removed(disk)
    return {
        "passed": online_s is not None and seen is not None and seen[0] == "OK" and removed,
        "power_on_to_online_s": online_s,
        "in_vm_verdict": " ".join(seen) if seen else "aucun (voir serial-valide.log)",
        "password_removed_from_fat": removed,
    }


def check_invalid(image: Path, out: Path, workdir: Path) -> dict[str, object]:
    """A wrong guichet.toml: the counter stays stopped, the reason is on the console and in
    GUICHET-ERREUR.txt on the card, in French."""
    serial = workdir / "serial-invalide.log"
    wrong = test_boot_config(free_port()).replace('type = "ethernet"', 'type = "wifi"')
    disk = prepare_disk(image, workdir / "sd-invalide.img", wrong)
    started = boot_and_wait(
        qemu_argv(out, disk, serial), serial, lambda: verdict(serial) is not None
    )
    seen = verdict(serial)
    console = serial.read_text(encoding="utf-8", errors="replace")
    error_file = fat_file(disk, "GUICHET-ERREUR.txt")
    refused = seen is not None and "configuration refusée" in seen[1]
    explained = "NE PEUT PAS DÉMARRER" in console and "wifi_nom : obligatoire" in error_file
    return {
        "passed": refused and explained,
        "power_on_to_verdict_s": round(time.monotonic() - started, 1),
        "in_vm_verdict": " ".join(seen) if seen else "aucun (voir serial-invalide.log)",
        "error_file_on_fat": error_file.strip().splitlines()[:2],
    }


def conclude(name: str, result: dict[str, Any], report: Path, workdir: Path, *, keep: bool) -> int:
    """Print and keep the report; passed when every phase (a dict with ``passed``) passed;
    the VMs' disks and logs removed then, unless ``keep``."""
    text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    sys.stdout.write(text)
    report.write_text(text, encoding="utf-8")
    phases = [v for v in result.values() if isinstance(v, dict) and "passed" in v]
    passed = bool(phases) and all(bool(phase["passed"]) for phase in phases)
    if passed and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        sys.stdout.write(f"logs: {workdir}\n")
    sys.stdout.write(f"{name}: " + ("réussi\n" if passed else "ÉCHEC\n"))
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image.check")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "var" / "image" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the VMs' disks and logs")
    args = parser.parse_args(argv)
    image = args.out / "guichet-proche.img"
    if not image.exists():
        sys.stderr.write(f"image-check: {image} is missing: run ./run image first\n")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="check-", dir=args.out.parent))
    workdir.chmod(0o755)  # mosquitto must read its config
    try:
        result = {
            "valid_guichet_toml": check_valid(image, args.out, workdir),
            "invalid_guichet_toml": check_invalid(image, args.out, workdir),
        }
    except VmDiedError as exc:
        sys.stderr.write(f"image-check: ÉCHEC — {exc}\nlogs: {workdir}\n")
        return 1
    return conclude("image-check", result, args.out / "image-check.json", workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
