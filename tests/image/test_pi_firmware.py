"""The firmware's stand-in for ``./run update-check`` (image/pi_firmware.py): its reading of
autoboot.txt and config.txt, and a whole choice made on a real GPT card image with FATs
(sfdisk, mkfs.vfat, mtools, as the builder makes them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from image.pi_firmware import (
    FirmwareError,
    PiFirmware,
    autoboot_partition,
    config_files,
    wants_tryboot,
)

FRESH = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"


def test_autoboot_sections() -> None:
    assert autoboot_partition(FRESH, tryboot=False) == 2
    assert autoboot_partition(FRESH, tryboot=True) == 3
    # Without tryboot_a_b=1 the firmware ignores [tryboot]'s partition.
    plain = FRESH.replace("tryboot_a_b=1\n", "")
    assert autoboot_partition(plain, tryboot=True) == 2
    with pytest.raises(FirmwareError):
        autoboot_partition("[all]\ntryboot_a_b=1\n", tryboot=False)


def test_config_txt_names_the_kernel_and_initramfs() -> None:
    text = "# raspi-firmware\narm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n"
    assert config_files(text) == ("vmlinuz", "initrd.img")
    with pytest.raises(FirmwareError):
        config_files("arm_64bit=1\n")


def test_only_a_tryboot_reboot_sets_the_flag() -> None:
    assert wants_tryboot("systemd-shutdown[1]: Rebooting with argument '0 tryboot'.\n")
    assert wants_tryboot("[  101.2] reboot: Restarting system with command '0 tryboot'\n")
    assert not wants_tryboot("systemd-shutdown[1]: Rebooting.\n")


def _fat(tmp: Path, name: str, files: dict[str, str]) -> Path:
    image = tmp / f"{name}.fs"
    subprocess.run(["mkfs.vfat", "-C", "-F", "32", str(image), str(33 * 1024)], check=True,
                   capture_output=True)  # fmt: skip
    for file, text in files.items():
        local = tmp / f"{name}-{file}"
        local.write_text(text)
        subprocess.run(["mcopy", "-i", str(image), str(local), f"::/{file}"], check=True)
    return image


def _card(tmp: Path, autoboot: str) -> Path:
    """firmware FAT (p1), boot-a (p2), boot-b (p3): 34 MiB each from 4 MiB on."""
    disk = tmp / "card.img"
    subprocess.run(["truncate", "-s", "112M", str(disk)], check=True)
    script = "label: gpt\n" + "".join(
        f"start={(4 + 34 * n) * 2048}, size={34 * 2048}, name=p{n + 1}\n" for n in range(3)
    )
    subprocess.run(["sfdisk", "--quiet", str(disk)], input=script, text=True, check=True)
    fats = [
        _fat(tmp, "firmware", {"autoboot.txt": autoboot}),
        *(
            _fat(tmp, slot, {
                "config.txt": f"kernel=vmlinuz-{slot}\ninitramfs initrd-{slot} followkernel\n",
                f"vmlinuz-{slot}": f"kernel of {slot}", f"initrd-{slot}": f"initrd of {slot}",
                "cmdline.txt": f"root=PARTUUID=root-of-{slot} ro rootwait\n",
            })
            for slot in ("a", "b")
        ),
    ]  # fmt: skip
    for n, fat in enumerate(fats):
        subprocess.run(["dd", f"if={fat}", f"of={disk}", "bs=1M", f"seek={4 + 34 * n}",
                        "conv=notrunc", "status=none"], check=True)  # fmt: skip
    return disk


def test_the_firmware_boots_the_trial_once_then_the_committed_slot(tmp_path: Path) -> None:
    firmware = PiFirmware(_card(tmp_path, FRESH), tmp_path / "scratch")
    first = firmware.power_on()
    assert (first.partition, first.tryboot) == (2, False)
    assert first.kernel.read_text() == "kernel of a"
    assert first.initrd.read_text() == "initrd of a"
    args = first.kernel_args()
    assert args.startswith("root=PARTUUID=root-of-a ro rootwait ")
    assert "guichet.firmware=2,0" in args
    assert "systemd.wants=guichet-firmware-stand-in.service" in args
    assert args.index("console=ttyAMA0") > args.index("root=")  # the VM's console wins

    firmware.powered_off("... Rebooting with argument '0 tryboot'.")
    trial = firmware.power_on()
    assert (trial.partition, trial.tryboot) == (3, True)
    assert trial.kernel.read_text() == "kernel of b"
    assert "root=PARTUUID=root-of-b" in trial.kernel_args()
    assert "guichet.firmware=3,1" in trial.kernel_args()

    # The trial was not committed (autoboot.txt unchanged) and the box rebooted plainly, or
    # lost power: the one-shot flag is gone, A again.
    firmware.powered_off("systemd-shutdown[1]: Rebooting.")
    assert firmware.power_on().partition == 2
    # Even a run that said nothing (a power cut) leaves the flag cleared.
    firmware.tryboot = True
    firmware.power_on()
    assert firmware.power_on().partition == 2
