"""The Raspberry Pi firmware's part, played for ``./run update-check`` in qemu.

qemu has no Raspberry Pi 4 model and no VideoCore firmware; the counter's side of an update
(RAUC, the tryboot backend, the agent, the trial guard) runs for real in the VM, and this
harness stands in for exactly what the Pi 4's EEPROM bootloader and ``start4.elf`` do
between two boots, nothing more:

1. read ``autoboot.txt`` on the card's first FAT partition and pick ``boot_partition`` from
   its ``[tryboot]`` section when the tryboot flag is set, else from ``[all]``
   (``tryboot_a_b=1``: the partition number is the slot's own FAT);
2. the tryboot flag is one-shot: set by ``reboot "0 tryboot"`` (reboot(2)'s argument, which
   the kernel prints on the console as « reboot: Restarting system with command
   '0 tryboot' » and systemd as « Rebooting with argument '0 tryboot'. » — qemu itself drops
   the argument), cleared by the next boot whatever happens;
3. read that FAT's ``config.txt`` (``kernel=``, ``initramfs``) and ``cmdline.txt``, and boot
   that kernel and initramfs with that command line;
4. tell the kernel which partition it booted and whether in tryboot: on a Pi, the device-tree
   cells ``/chosen/bootloader/partition`` and ``tryboot``; here ``guichet.firmware=P,T`` on
   the command line, which the image's inert ``guichet-firmware-stand-in.service`` turns
   into the same cells under ``/proc/device-tree/chosen`` before RAUC or the agent start.

What it does not stand in for: the EEPROM's own A/B logic beyond these two sections, the
GPU's memory split, the Pi's device tree and its peripherals (qemu's ``virt`` machine and
Debian's generic arm64 kernel boot instead, as in ``./run image-check``).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

FIRMWARE_PARTITION = 1  # RASPIFIRM: autoboot.txt
# reboot(2)'s argument as systemd-shutdown and the kernel (at KERN_EMERG: always on the
# console) say it before the machine resets.
TRYBOOT_SAID = ("Rebooting with argument '0 tryboot'", "Restarting system with command '0 tryboot'")
STAND_IN_UNIT = "guichet-firmware-stand-in.service"
SECTOR = 512


class FirmwareError(RuntimeError):
    """The card cannot be booted as the firmware would: what it found instead."""


@dataclass(frozen=True)
class Boot:
    """One power-on as the firmware chose it."""

    partition: int
    tryboot: bool
    kernel: Path
    initrd: Path
    cmdline: str

    def kernel_args(self, extra: str = "") -> str:
        """cmdline.txt, the stand-in's cells, the VM's serial console (last wins)."""
        words = [
            self.cmdline.strip(),
            f"systemd.wants={STAND_IN_UNIT}",
            f"guichet.firmware={self.partition},{int(self.tryboot)}",
            "console=ttyAMA0",
            "net.ifnames=0",
            extra,
        ]
        return " ".join(w for w in words if w)


def autoboot_partition(text: str, *, tryboot: bool) -> int:
    """``boot_partition`` of ``[tryboot]`` (when tryboot and ``tryboot_a_b=1``) or ``[all]``."""
    sections: dict[str, dict[str, str]] = {}
    section = "all"
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match.group(1)
            continue
        key, _, value = line.partition("=")
        sections.setdefault(section, {})[key.strip()] = value.strip()
    every = sections.get("all", {})
    chosen = every
    if tryboot and every.get("tryboot_a_b") == "1" and "tryboot" in sections:
        chosen = every | sections["tryboot"]
    try:
        return int(chosen["boot_partition"])
    except (KeyError, ValueError):
        raise FirmwareError(f"autoboot.txt names no boot_partition: {text!r}") from None


def config_files(config_txt: str) -> tuple[str, str]:
    """(kernel, initramfs) file names from a slot's config.txt."""
    kernel = initrd = None
    for raw in config_txt.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("kernel="):
            kernel = line.split("=", 1)[1].strip()
        elif line.startswith("initramfs "):
            initrd = line.split()[1]
    if kernel is None or initrd is None:
        raise FirmwareError("config.txt names no kernel= or no initramfs")
    return kernel, initrd


def wants_tryboot(serial_text: str) -> bool:
    """Whether the boot that wrote ``serial_text`` ended with ``reboot "0 tryboot"``."""
    return any(said in serial_text for said in TRYBOOT_SAID)


class PiFirmware:
    """Chooses each boot of one card image (``disk``) as the Pi's firmware would."""

    def __init__(self, disk: Path, scratch: Path) -> None:
        self.disk = disk
        self.scratch = scratch
        self.tryboot = False  # the one-shot flag, set by the previous run's reboot argument

    def offsets(self) -> dict[int, int]:
        shown = subprocess.run(  # noqa: S603
            ["sfdisk", "--json", str(self.disk)],  # noqa: S607
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        table = json.loads(shown.stdout)["partitiontable"]
        return {n: p["start"] * SECTOR for n, p in enumerate(table["partitions"], 1)}

    def read(self, partition: int, name: str) -> str:
        at = self.offsets()[partition]
        shown = subprocess.run(  # noqa: S603
            ["mtype", "-i", f"{self.disk}@@{at}", f"::/{name}"],  # noqa: S607
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if shown.returncode != 0:
            raise FirmwareError(f"partition {partition}: no {name} ({shown.stderr.strip()})")
        return shown.stdout

    def copy_out(self, partition: int, name: str) -> Path:
        at = self.offsets()[partition]
        target = self.scratch / f"p{partition}-{name}"
        target.unlink(missing_ok=True)
        subprocess.run(  # noqa: S603
            ["mcopy", "-n", "-i", f"{self.disk}@@{at}", f"::/{name}", str(target)],  # noqa: S607
            check=True, capture_output=True,
        )  # fmt: skip
        return target

    def power_on(self) -> Boot:
        """This boot's partition, kernel, initramfs and command line; clears the flag."""
        tryboot, self.tryboot = self.tryboot, False
        partition = autoboot_partition(
            self.read(FIRMWARE_PARTITION, "autoboot.txt"), tryboot=tryboot
        )
        kernel, initrd = config_files(self.read(partition, "config.txt"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        return Boot(
            partition=partition,
            tryboot=tryboot,
            kernel=self.copy_out(partition, kernel),
            initrd=self.copy_out(partition, initrd),
            cmdline=self.read(partition, "cmdline.txt"),
        )

    def powered_off(self, serial_text: str) -> None:
        """After a run: a ``reboot "0 tryboot"`` sets the flag for the next power-on."""
        self.tryboot = wants_tryboot(serial_text)
