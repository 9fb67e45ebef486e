"""RAUC's custom bootloader backend for tryboot (image/layers/counter/files/rauc-tryboot.sh),
run for real on a temporary directory standing for the first FAT partition and another for
the device tree the Pi firmware fills (/proc/device-tree/chosen/bootloader)."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "image/layers/counter/files/rauc-tryboot.sh"
FRESH = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
ON_B = "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"


@dataclass
class Firmware:
    """The FAT the firmware reads autoboot.txt from, and what it says it booted."""

    fat: Path
    dt: Path

    def boot(self, partition: int, *, tryboot: bool = False) -> None:
        self.dt.mkdir(exist_ok=True)
        (self.dt / "partition").write_bytes(partition.to_bytes(4, "big"))
        (self.dt / "tryboot").write_bytes(int(tryboot).to_bytes(4, "big"))

    def next_boot(self, *, tryboot: bool) -> int:
        """What the firmware boots next: autoboot.txt's [tryboot] or [all] boot_partition."""
        section, chosen = "", {}
        for line in (self.fat / "autoboot.txt").read_text().splitlines():
            if line.startswith("["):
                section = line
            elif line.startswith("boot_partition="):
                chosen[section] = int(line.split("=")[1])
        return chosen["[tryboot]" if tryboot else "[all]"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "GUICHET_AUTOBOOT_DIR": str(self.fat)}
        env["GUICHET_FIRMWARE_DT"] = str(self.dt)
        return subprocess.run(
            ["sh", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture
def pi(tmp_path: Path) -> Firmware:
    fat = tmp_path / "fat"
    fat.mkdir()
    (fat / "autoboot.txt").write_text(FRESH)
    firmware = Firmware(fat, tmp_path / "dt")
    firmware.boot(2)
    return firmware


def test_a_fresh_card_boots_a_which_is_good(pi: Firmware) -> None:
    assert pi.ok("get-current") == "A"
    assert pi.ok("get-primary") == "A"
    assert pi.ok("get-state", "A") == "good"
    assert pi.ok("get-state", "B") == "bad"


def test_an_update_tries_b_once_then_commits_it(pi: Firmware) -> None:
    # rauc install: the target marked bad, written, then made primary.
    pi.ok("set-state", "B", "bad")
    pi.ok("set-primary", "B")
    assert pi.ok("get-primary") == "B"
    assert (pi.fat / "autoboot.txt").read_text() == FRESH  # A stays the default
    assert pi.next_boot(tryboot=True) == 3
    pi.boot(pi.next_boot(tryboot=True), tryboot=True)  # reboot "0 tryboot"
    assert pi.ok("get-current") == "B"
    assert pi.ok("get-state", "B") == "bad"  # not yet good: the health gate runs
    assert pi.ok("get-primary") == "A"  # a plain reboot would go back to A
    pi.ok("set-state", "B", "good")  # rauc status mark-good: the commit
    assert (pi.fat / "autoboot.txt").read_text() == ON_B
    assert pi.ok("get-primary") == "B"
    assert pi.ok("get-state", "B") == "good"
    assert pi.next_boot(tryboot=False) == 3
    assert not list(pi.fat.glob("*.tmp"))


def test_a_failed_trial_goes_back_to_a(pi: Firmware) -> None:
    pi.ok("set-state", "B", "bad")
    pi.ok("set-primary", "B")
    pi.boot(3, tryboot=True)
    pi.ok("set-state", "B", "bad")  # the health gate failed: rauc status mark-bad
    assert (pi.fat / "autoboot.txt").read_text() == FRESH
    assert pi.ok("get-primary") == "A"
    assert pi.next_boot(tryboot=False) == 2
    pi.boot(2)
    assert pi.ok("get-current") == "A"
    assert pi.ok("get-state", "A") == "good"


def test_b_cannot_be_committed_unless_booted_from_it_in_tryboot(pi: Firmware) -> None:
    pi.ok("set-primary", "B")
    done = pi.run("set-state", "B", "good")  # still on A: committing B would be blind
    assert done.returncode != 0
    assert "tryboot" in done.stderr
    assert (pi.fat / "autoboot.txt").read_text() == FRESH
    pi.boot(3, tryboot=False)  # B without the tryboot flag is no trial either
    assert pi.run("set-state", "B", "good").returncode != 0


def test_a_trial_that_never_booted_leaves_the_firmware_on_a(pi: Firmware) -> None:
    pi.ok("set-state", "B", "bad")
    pi.ok("set-primary", "B")
    pi.boot(2)  # B hung, the watchdog reset: the one-shot flag is gone, A boots
    assert pi.ok("get-current") == "A"
    assert pi.ok("get-primary") == "B"  # still asked for: the agent sees it and gives it up
    pi.ok("set-primary", "A")
    assert pi.ok("get-primary") == "A"
    assert (pi.fat / "autoboot.txt").read_text() == FRESH


def test_updating_again_from_b_tries_a(pi: Firmware) -> None:
    (pi.fat / "autoboot.txt").write_text(ON_B)
    (pi.fat / "guichet-slots.txt").write_text("A=good\nB=good\n")
    pi.boot(3)
    pi.ok("set-state", "A", "bad")
    pi.ok("set-primary", "A")
    assert pi.next_boot(tryboot=True) == 2
    pi.boot(2, tryboot=True)
    pi.ok("set-state", "A", "good")
    assert (pi.fat / "autoboot.txt").read_text() == FRESH


def test_refusals(pi: Firmware) -> None:
    assert pi.run("get-state", "C").returncode != 0
    assert pi.run("set-state", "A", "maybe").returncode != 0
    assert pi.run("frobnicate").returncode != 0
    (pi.dt / "partition").unlink()
    assert pi.run("get-current").returncode != 0  # no firmware word: RAUC reads /proc/cmdline
    (pi.fat / "autoboot.txt").unlink()
    assert pi.run("get-primary").returncode != 0


def test_the_images_rauc_config_is_read_by_rauc(tmp_path: Path) -> None:
    """RAUC itself reads the counter's system.conf (variables substituted, the keyring moved
    to a throwaway CA) when it checks a real bundle: a key it does not know fails here."""
    from image.builder.model import load_description

    description = load_description(SCRIPT.parents[3])
    text = (SCRIPT.parent / "rauc-system.conf").read_text(encoding="utf-8")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=Pays",
         "-addext", "basicConstraints=critical,CA:true",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    conf = tmp_path / "system.conf"
    conf.write_text(
        description.substitute(text, where="rauc-system.conf").replace(
            "/etc/rauc/keyring.pem", str(cert)
        ),
        encoding="utf-8",
    )
    root, content = tmp_path / "root", tmp_path / "content"
    root.mkdir()
    content.mkdir()
    (root / "blob").write_bytes(random.Random(13).randbytes(64 * 1024))  # > RAUC's 4 KiB
    subprocess.run(["mksquashfs", root, content / "rootfs.img", "-quiet", "-noappend"], check=True)
    (content / "manifest.raucm").write_text(
        "[update]\ncompatible=guichet-proche-rpi-arm64\nversion=1.5.0\n\n"
        "[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.img\n",
        encoding="utf-8",
    )
    bundle = tmp_path / "b.raucb"
    subprocess.run(["rauc", "bundle", f"--cert={cert}", f"--key={key}", content, bundle],
                   check=True, capture_output=True)  # fmt: skip
    done = subprocess.run(
        ["rauc", f"--conf={conf}", "info", "--output-format=json", str(bundle)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"compatible":"guichet-proche-rpi-arm64"' in done.stdout
    conf.write_text(conf.read_text().replace("bootloader=custom", "bootloader=nonesuch"))
    assert subprocess.run(["rauc", f"--conf={conf}", "info", str(bundle)],
                          capture_output=True, check=False).returncode != 0  # fmt: skip


def test_a_read_only_fat_is_made_writable_for_the_write_only(pi: Firmware, tmp_path: Path) -> None:
    """At run time the FAT is mounted read-only (the fstab): a call that writes remounts it
    read-write, then read-only again on its way out; a call that only reads does not."""
    tools, calls = tmp_path / "tools", tmp_path / "calls"
    tools.mkdir()
    (tools / "findmnt").write_text("#!/bin/sh\necho ro,noatime,umask=0022\n")
    (tools / "mount").write_text(f'#!/bin/sh\necho "mount $*" >>"{calls}"\n')
    for tool in ("findmnt", "mount"):
        (tools / tool).chmod(0o755)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "GUICHET_AUTOBOOT_DIR": str(pi.fat),
           "GUICHET_FIRMWARE_DT": str(pi.dt)}  # fmt: skip
    reading = subprocess.run(["sh", str(SCRIPT), "get-state", "B"], env=env, check=True)
    assert reading.returncode == 0
    assert not calls.exists()
    subprocess.run(["sh", str(SCRIPT), "set-state", "B", "bad"], env=env, check=True)
    assert calls.read_text().splitlines() == [
        f"mount -o remount,rw {pi.fat}",
        f"mount -o remount,ro {pi.fat}",
    ]
