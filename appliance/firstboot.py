"""First boot (and every boot): apply ``guichet.toml`` from the SD card's boot partition.

Run by ``guichet-firstboot.service`` before the counter's service, as root:
``python -m appliance.firstboot --boot /boot/firmware --data /var/lib/guichet``.

- The file unchanged since it was last applied (its hash is kept): nothing to do.
- Invalid: one French message on the screen (tty1 — the HDMI screen shows it, the counter's
  own display is not running yet), on the serial console and in ``GUICHET-ERREUR.txt`` on
  the boot partition, readable from the technician's computer; exit 1 keeps the counter's
  service stopped (it ``Requires=`` this one) instead of a box that looks dead.
- Valid: the agent's configuration (owner-only), Wi-Fi, time zone and SSH key are written
  to the data partition; secrets are removed from the FAT file (kept from the previous
  apply when a later edit leaves them empty); the data partition is grown once. The Pays's
  CA (``[flotte] certificat_ca``: a .pem file on the card, or its text) is checked, copied
  to the data partition and named in the agent's ``[fleet.tls] ca_file``.

``--erreur-agent`` (``guichet-erreur-carte.service``, started by a path unit when the agent
writes ``GUICHET-ERREUR.txt`` into its data directory — it may write nowhere else) copies
that message onto the card and the console: an enrolment refused says why, where the
technician looks.

The root is read-only: everything written goes to the data partition; ``/etc`` holds
symlinks into it, laid by the image builder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.hw.screen_pygame.adapter import PygameScreen

from appliance.firstboot_config import (
    BootConfig,
    BootConfigError,
    ca_certificate,
    parse_boot_config,
    strip_secrets,
    to_appliance_toml,
    wpa_supplicant_conf,
)

logger = logging.getLogger(__name__)

BOOT_FILE = "guichet.toml"
ERROR_FILE = "GUICHET-ERREUR.txt"
APPLIANCE_FILE = "config/guichet-appliance.toml"  # the unit's ExecStart reads this one
APPLIED_HASH = "config/guichet-toml.sha256"
SECRETS_FILE = "config/secrets.json"
TOKEN_FILE = "config/jeton-enrolement"  # noqa: S105 - a path, not a secret
CA_FILE = "config/ca-pays.pem"  # the Pays's CA, public: readable by the agent
STATE_DIR = "etat"  # the agent's data_dir (outbox): the only path it may write
WPA_FILE = "systeme/wpa_supplicant-wlan0.conf"
SSH_DIR = "systeme/ssh"
LOCALTIME = "systeme/localtime"
GROWN_MARK = "systeme/partition-agrandie"
SERVICE_USER = "guichet"
EXIT_OK, EXIT_INVALID = 0, 1

Run = Callable[[Sequence[str]], None]


def run_command(argv: Sequence[str], stdin: str | None = None) -> None:
    subprocess.run(list(argv), input=stdin, text=True, check=True, capture_output=True)  # noqa: S603


@dataclass
class Provisioner:
    """Everything first boot does, with its paths and side effects injectable for tests."""

    boot: Path
    data: Path
    run: Callable[..., None] = run_command
    owner: str | None = SERVICE_USER  # None: do not chown (tests, not root)
    screens: Sequence[Path] = (Path("/dev/tty1"),)
    remount_boot: bool = True
    grow: bool = True

    def apply(self) -> int:
        source = self.boot / BOOT_FILE
        if not source.exists():
            if (self.data / APPLIANCE_FILE).exists():
                return EXIT_OK  # configured before; the technician removed the file
            return self._refuse(
                "Le fichier guichet.toml est introuvable sur la carte SD.\n"
                "Copiez le modèle fourni avec l'image sur la partition RASPIFIRM, remplissez-le,"
                " puis redémarrez."
            )
        text = source.read_text(encoding="utf-8-sig", errors="replace")
        if (
            _digest(text) == _read(self.data / APPLIED_HASH)
            and (self.data / APPLIANCE_FILE).exists()
        ):
            logger.info("guichet.toml unchanged since it was applied")
            self._grow_once()
            return EXIT_OK
        try:
            config = parse_boot_config(text)
            ca_pem = ca_certificate(c, self.boot) if (c := config.flotte.certificat_ca) else None
        except BootConfigError as exc:
            return self._refuse(str(exc))
        config = self._with_kept_secrets(config)
        self._write_data(config, ca_pem)
        cleaned = strip_secrets(text, f"enregistré dans le guichet le {date.today():%d/%m/%Y}")
        with self._boot_writable():
            if cleaned != text:
                source.write_text(cleaned, encoding="utf-8")
            (self.boot / ERROR_FILE).unlink(missing_ok=True)
        _write(self.data / APPLIED_HASH, _digest(cleaned), mode=0o600)
        self._grow_once()
        self._say(
            f"Guichet Proche : configuration appliquée ({config.guichet.site},"
            f" {config.guichet.nom}, identifiant {config.guichet.device_id()})."
        )
        return EXIT_OK

    # --- the data partition -----------------------------------------------------------

    def _with_kept_secrets(self, config: BootConfig) -> BootConfig:
        """An empty secret in the file means "keep the one applied before"."""
        kept = json.loads(_read(self.data / SECRETS_FILE) or "{}")
        flotte = config.flotte.model_copy(
            update={
                "mot_de_passe": config.flotte.mot_de_passe or kept.get("mot_de_passe", ""),
                "jeton": config.flotte.jeton or kept.get("jeton", ""),
            }
        )
        reseau = config.reseau.model_copy(
            update={"wifi_cle": config.reseau.wifi_cle or kept.get("wifi_cle", "")}
        )
        return config.model_copy(update={"flotte": flotte, "reseau": reseau})

    def _write_data(self, config: BootConfig, ca_pem: str | None) -> None:
        data = self.data
        state = data / STATE_DIR
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o700)
        self._chown(state)
        ca_file = data / CA_FILE
        if ca_pem is not None:
            _write(ca_file, ca_pem, mode=0o644)
        else:
            ca_file.unlink(missing_ok=True)
        appliance = data / APPLIANCE_FILE
        text = to_appliance_toml(
            config, data_dir=str(state), ca_file=str(ca_file) if ca_pem is not None else None
        )
        _write(appliance, text, mode=0o600)
        self._chown(appliance)
        secrets = {
            "mot_de_passe": config.flotte.mot_de_passe,
            "jeton": config.flotte.jeton,
            "wifi_cle": config.reseau.wifi_cle,
        }
        _write(data / SECRETS_FILE, json.dumps(secrets), mode=0o600)
        if config.flotte.jeton:  # kept beside the agent config, which enrols with it
            _write(data / TOKEN_FILE, config.flotte.jeton + "\n", mode=0o600)
        else:
            (data / TOKEN_FILE).unlink(missing_ok=True)
        if config.reseau.type == "wifi":
            _write(data / WPA_FILE, wpa_supplicant_conf(config.reseau), mode=0o600)
        else:
            (data / WPA_FILE).unlink(missing_ok=True)
        self._time_zone(config.systeme.fuseau_horaire)
        self._ssh(config.systeme.cle_ssh)

    def _time_zone(self, zone: str) -> None:
        link = self.data / LOCALTIME
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/share/zoneinfo/{zone}")

    def _ssh(self, key: str) -> None:
        ssh = self.data / SSH_DIR
        if not key:
            shutil.rmtree(ssh, ignore_errors=True)  # no key: sshd's unit condition fails
            return
        ssh.mkdir(parents=True, exist_ok=True)
        ssh.chmod(0o700)
        host_key = ssh / "ssh_host_ed25519_key"
        if not host_key.exists():  # one per counter, made here, never in the image
            self.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        _write(ssh / "authorized_keys", key + "\n", mode=0o600)

    def _chown(self, path: Path) -> None:
        if self.owner is not None:
            entry = pwd.getpwnam(self.owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # --- the boot partition, the screen, the card ------------------------------------

    @contextmanager
    def _boot_writable(self) -> Iterator[None]:
        if self.remount_boot:
            self.run(["mount", "-o", "remount,rw", str(self.boot)])
        try:
            yield
        finally:
            if self.remount_boot:
                os.sync()
                with suppress(subprocess.CalledProcessError):
                    self.run(["mount", "-o", "remount,ro", str(self.boot)])

    def _refuse(self, message: str) -> int:
        self._say("\n*** GUICHET PROCHE : LE GUICHET NE PEUT PAS DÉMARRER ***\n" + message)
        try:
            with self._boot_writable():
                _write(self.boot / ERROR_FILE, message.replace("\n", "\r\n") + "\r\n", mode=0o644)
        except (OSError, subprocess.CalledProcessError) as exc:
            logger.warning("cannot write %s: %s", ERROR_FILE, exc)
        return EXIT_INVALID

    def publish_agent_error(self) -> int:
        """The agent's ``GUICHET-ERREUR.txt`` (enrolment refused) onto the card and the
        console; nothing when the agent has none (any more)."""
        source = self.data / STATE_DIR / ERROR_FILE
        try:
            text = source.read_bytes().decode("utf-8", errors="replace")  # CRLF kept
        except FileNotFoundError:
            return EXIT_OK
        self._say(text.replace("\r\n", "\n").strip())
        try:
            with self._boot_writable():
                _write(self.boot / ERROR_FILE, text, mode=0o644)
        except (OSError, subprocess.CalledProcessError) as exc:
            logger.warning("cannot write %s: %s", ERROR_FILE, exc)
            return EXIT_INVALID
        return EXIT_OK

    def _say(self, message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()
        for screen in self.screens:
            with suppress(OSError), screen.open("w", encoding="utf-8") as tty:
                tty.write("\n" + message.replace("\n", "\r\n") + "\r\n")

    def _grow_once(self) -> None:
        mark = self.data / GROWN_MARK
        if not self.grow or mark.exists():
            return
        try:
            grow_partition(self.data, self.run)
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            logger.warning("data partition not grown: %s", exc)
            return
        _write(mark, date.today().isoformat() + "\n", mode=0o644)


def grow_partition(mount_point: Path, run: Callable[..., None]) -> None:
    """Grow the (last) partition mounted at ``mount_point`` to the end of its disk, then its
    ext4 filesystem, online."""
    source = subprocess.run(  # noqa: S603
        ["findmnt", "-no", "SOURCE", str(mount_point)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name = Path(source).resolve().name  # mmcblk0p6, vda6
    sys_block = Path("/sys/class/block") / name
    number = (sys_block / "partition").read_text().strip()
    disk = "/dev/" + sys_block.resolve().parent.name
    grow_table(disk, number, run)
    run(["partx", "-u", "--nr", number, disk])
    run(["resize2fs", source])


def grow_table(disk: str, number: str, run: Callable[..., None]) -> None:
    """The partition table's part: partition ``number`` to the end of ``disk``. On the GPT
    card, sfdisk first moves the backup header from the image's end to the card's (« The
    backup GPT table is not on the end of the device. This problem will be corrected by
    write. »), then the partition takes the space up to it."""
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-N", number, disk], stdin=", +\n")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _write(path: Path, text: str, *, mode: int) -> None:
    """Write through a temporary file and rename: a power cut leaves the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partiel")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(partial, mode)
    os.replace(partial, path)


def screen_summary(message: str) -> str:
    """The error as the counter's screen shows it: the wrong lines, then what to do."""
    lines = [line.strip(" -") for line in message.splitlines() if line.strip()]
    if len(lines) < 3:  # title, at least one error, what to do
        return " ".join(lines)
    return " • ".join(lines[1:-1]) + " — " + lines[-1]


def show_error_on_screen(boot: Path, *, driver: str = "kmsdrm") -> PygameScreen:
    """Put GUICHET-ERREUR.txt on the counter's screen (out of service, in red); returns the
    screen, which keeps showing it until closed. Raises ``HardwareError`` without a display."""
    from appliance.hw.ports import ScreenState
    from appliance.hw.screen_pygame.adapter import PygameScreen

    message = (boot / ERROR_FILE).read_text(encoding="utf-8", errors="replace")
    screen = PygameScreen(driver=driver)
    screen.show(ScreenState.OUT_OF_SERVICE, reason=screen_summary(message))
    return screen


def _hold_error_on_screen(boot: Path) -> int:
    """``--ecran``: run by ``guichet-erreur-ecran.service`` when first boot failed."""
    from appliance.errors import HardwareError

    try:
        show_error_on_screen(boot)
    except (HardwareError, OSError) as exc:
        logger.warning("cannot show the error on the screen: %s", exc)
        return EXIT_INVALID
    signal.pause()  # until systemd stops the unit (SIGTERM ends the process)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.firstboot")
    parser.add_argument("--boot", type=Path, default=Path("/boot/firmware"))
    parser.add_argument("--data", type=Path, default=Path("/var/lib/guichet"))
    parser.add_argument("--ecran", action="store_true", help="show GUICHET-ERREUR.txt on screen")
    parser.add_argument(
        "--erreur-agent",
        action="store_true",
        help="copy the agent's GUICHET-ERREUR.txt to the card",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="guichet-firstboot: %(message)s")
    if args.ecran:
        return _hold_error_on_screen(args.boot)
    provisioner = Provisioner(boot=args.boot, data=args.data)
    if args.erreur_agent:
        return provisioner.publish_agent_error()
    return provisioner.apply()


if __name__ == "__main__":
    sys.exit(main())
