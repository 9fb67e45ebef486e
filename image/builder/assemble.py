"""The assemble stage: the partitions made as files, then one GPT disk image with A/B slots.

No loop device and no mount: the FATs are made with ``mkfs.vfat -C`` and filled with mtools,
the ext4 ones with ``mkfs.ext4 -d``, the table with ``sfdisk`` on a plain file, and each
filesystem is copied in with ``dd conv=notrunc,sparse``. Layout (MiB, aligned for SD cards;
docs/updates.md, « A/B slots »):

    0-4     protective MBR, GPT and gap
    p1  firmware  FAT32 "RASPIFIRM"    autoboot.txt (which slot the firmware boots), guichet.toml
    p2  boot-a    FAT32 "GUICHETBOOT"  slot A's firmware, kernel, initramfs, config.txt, cmdline.txt
    p3  boot-b    (zeros)              slot B's, written by the first update
    p4  root-a    ext4  "root"         read-only at run time
    p5  root-b    (zeros)              written by the first update
    p6  data      ext4  "guichet-data" grown to fill the card at first boot
    last MiB      the backup GPT

The root partitions are the root filesystem plus ``root_headroom_mib`` for later releases,
which must fit in the slots of the cards already in town halls. The ext4 filesystem itself is
only as large as its files need (``ROOT_SLACK``, ``ROOT_FS_EXTRA_MIB``): the same file goes
into the update bundle (image/builder/bundle.py), so a later release's filesystem fits an
earlier card's slot as long as it grew less than the headroom.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from image.builder import manifest
from image.builder.model import Description
from image.builder.project import BOOT_LABEL, DATA_LABEL, ROOT_LABEL, write_file
from image.builder.steps import Action, Command, Step
from image.builder.workspace import Workspace

FIRST_MIB = 4  # SD cards erase in 4 MiB blocks: align every partition on them
GPT_TAIL_MIB = 1  # the backup GPT (33 sectors) lives in the card's last MiB
SECTORS_PER_MIB = 2048
ROOT_SLACK = 1.15  # ext4 metadata and inode tables on top of the files' size
ROOT_FS_EXTRA_MIB = 64  # a little free space inside the read-only root (journal, reserved)
SLOT_BOOT_LABEL = "GUICHETBOOT"  # the slots' FATs (found by partition name, not by label)
# GPT partition types: the Pi 4 bootloader boots from « Microsoft basic data » FATs on GPT
# (rpi-eeprom, 2020-09-03 and later); the rest are plain Linux filesystems, so systemd's
# gpt-auto-generator (discoverable partition types) mounts none of them by itself.
FAT_TYPE = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
# Partition names (GPT labels): what /etc/rauc/system.conf and the bundle's hook name under
# /dev/disk/by-partlabel. Numbers are what autoboot.txt and rauc-tryboot.sh say (2 and 3).
PARTITION_NAMES = ("firmware", "boot-a", "boot-b", "root-a", "root-b", "data")
SLOT_BOOT_PARTITIONS = {"A": 2, "B": 3}
# Fixed, so builds are reproducible and image/check.py knows slot A's root: every card made
# from this builder has the same identifiers (one card per counter; nothing else is plugged
# in at boot).
UUID_NAMESPACE = uuid.UUID("6d1c8b0e-3f0a-5b7e-9a43-6775696368e7")
DISK_UUID = str(uuid.uuid5(UUID_NAMESPACE, "disk")).upper()
PARTUUIDS = {name: str(uuid.uuid5(UUID_NAMESPACE, name)) for name in PARTITION_NAMES}


@dataclass(frozen=True)
class Part:
    number: int
    name: str
    start_mib: int
    size_mib: int
    type: str


@dataclass(frozen=True)
class Layout:
    firmware_mib: int
    boot_mib: int  # each slot's FAT
    root_mib: int  # each slot's root partition
    root_fs_mib: int  # the ext4 filesystem in it (and in the bundle)
    data_mib: int

    def parts(self) -> tuple[Part, ...]:
        sizes = (self.firmware_mib, self.boot_mib, self.boot_mib, self.root_mib,
                 self.root_mib, self.data_mib)  # fmt: skip
        types = (FAT_TYPE, FAT_TYPE, FAT_TYPE, LINUX_TYPE, LINUX_TYPE, LINUX_TYPE)
        parts, at = [], FIRST_MIB
        for number, (name, size, kind) in enumerate(
            zip(PARTITION_NAMES, sizes, types, strict=True), 1
        ):
            parts.append(Part(number, name, at, size, kind))
            at += size
        return tuple(parts)

    def part(self, name: str) -> Part:
        return next(p for p in self.parts() if p.name == name)

    @property
    def total_mib(self) -> int:
        last = self.parts()[-1]
        return last.start_mib + last.size_mib + GPT_TAIL_MIB

    def sfdisk_script(self) -> str:
        s = SECTORS_PER_MIB
        lines = ["label: gpt", f"label-id: {DISK_UUID}", "unit: sectors", "first-lba: 2048"]
        lines += [
            f"start={p.start_mib * s}, size={p.size_mib * s}, type={p.type}, "
            f'uuid={PARTUUIDS[p.name].upper()}, name="{p.name}"'
            for p in self.parts()
        ]
        return "\n".join(lines) + "\n"


def autoboot_txt() -> str:
    """The first FAT's autoboot.txt: slot A committed, slot B the one-shot tryboot (the
    update's backend rewrites it: image/layers/counter/files/rauc-tryboot.sh)."""
    return (
        "[all]\ntryboot_a_b=1\n"
        f"boot_partition={SLOT_BOOT_PARTITIONS['A']}\n"
        f"[tryboot]\nboot_partition={SLOT_BOOT_PARTITIONS['B']}\n"
    )


def root_cmdline(cmdline: str, partuuid: str) -> str:
    """cmdline.txt with its root given by PARTUUID, mounted read-only by the initramfs (the
    fstab has no ``/`` line: both slots' filesystems carry the same label)."""
    words = [w for w in cmdline.split() if not w.startswith("root=") and w not in ("rw", "ro")]
    return " ".join([f"root=PARTUUID={partuuid}", "ro", *words]) + "\n"


def measure_mib(path: Path) -> int:
    """Apparent size of a tree in MiB (du), 0 when it does not exist yet (``plan``)."""
    if not path.exists():
        return 0
    done = subprocess.run(  # noqa: S603
        ["du", "-s", "--block-size=1M", str(path)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[0])


def _round_up(mib: int) -> int:
    return mib + -mib % FIRST_MIB


def layout_for(description: Description, rootfs_mib: int) -> Layout:
    parts = description.image.partitions
    root_fs = _round_up(int(rootfs_mib * ROOT_SLACK) + ROOT_FS_EXTRA_MIB)
    root = _round_up(root_fs + parts.root_headroom_mib)
    return Layout(parts.firmware_mib, parts.boot_mib, root, root_fs, parts.data_mib)


def output_name(description: Description) -> str:
    return description.image.name


@dataclass(frozen=True)
class PartFiles:
    """The filesystems made as files (``work/parts``): the bundle takes ``boot`` and ``root``."""

    firmware: Path
    boot: Path
    root: Path
    data: Path


def part_files(ws: Workspace) -> PartFiles:
    return PartFiles(*(ws.parts / f"{p}.fs" for p in ("firmware", "boot", "root", "data")))


def assemble_plan(
    description: Description,
    workspace: Workspace,
    timings: dict[str, float] | None = None,
    *,
    rootfs_mib: int | None = None,
    keyring: Path | None = None,
) -> list[Step]:
    """``keyring``: the update CA's certificate, installed as /etc/rauc/keyring.pem before the
    root filesystem is made (image/builder/bundle.py chooses it)."""
    ws = workspace
    layout = layout_for(description, measure_mib(ws.rootfs) if rootfs_mib is None else rootfs_mib)
    img = ws.out / f"{output_name(description)}.img"
    files = part_files(ws)
    steps: list[Step] = [
        Action("split /boot/firmware onto the FATs", lambda: split_boot(description, ws)),
    ]
    if keyring is not None:
        steps.append(Action("the update keyring", lambda: install_keyring(keyring, ws.rootfs)))
    steps += [
        Command("mkdir parts", ("mkdir", "-p", str(ws.parts), str(ws.out))),
        Command("rm old parts", ("rm", "-f", *(str(f) for f in vars(files).values()), str(img))),
        *_fat("firmware", BOOT_LABEL, ws.firmwarefs, files.firmware, layout.firmware_mib),
        *_fat("slot boot", SLOT_BOOT_LABEL, ws.bootfs, files.boot, layout.boot_mib),
        _ext4("root", ROOT_LABEL, ws.rootfs, files.root, layout.root_fs_mib),
        _ext4("data", DATA_LABEL, ws.datafs, files.data, layout.data_mib),
        Command("disk image", ("truncate", "-s", f"{layout.total_mib}M", str(img))),
        Command("partition table", ("sfdisk", "--quiet", str(img)), stdin=layout.sfdisk_script()),
        _dd(files.firmware, img, layout.part("firmware").start_mib),
        _dd(files.boot, img, layout.part("boot-a").start_mib),
        _dd(files.root, img, layout.part("root-a").start_mib),
        _dd(files.data, img, layout.part("data").start_mib),
        Command("kernel and initramfs for image-check", _copy_kernel(ws)),
        Command(
            "compress (xz)",
            ("xz", "-T0", f"-{description.image.xz_level}", "-k", "-f", str(img)),
        ),
        Action(
            "checksum and manifest",
            lambda: _write_manifest(description, ws, img, layout, timings or {}),
        ),
    ]
    return steps


def _write_manifest(
    description: Description, ws: Workspace, img: Path, layout: Layout, timings: dict[str, float]
) -> None:
    manifest.write(description, ws, img, layout.total_mib, timings)


def _fat(what: str, label: str, tree: Path, target: Path, mib: int) -> tuple[Command, Command]:
    return (
        Command(
            f"{what}: FAT32",
            ("mkfs.vfat", "-C", "-F", "32", "-n", label, str(target), str(mib * 1024)),
        ),
        Command(
            f"{what}: copy files (mtools)",
            ("sh", "-c", 'mcopy -s -p -m -i "$0" "$1"/* ::/', str(target), str(tree)),
        ),
    )


def _ext4(what: str, label: str, tree: Path, target: Path, mib: int) -> Command:
    return Command(
        f"{what}: ext4 from the tree",
        ("mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(target), f"{mib}M"),
    )


def _dd(source: Path, img: Path, at_mib: int) -> Command:
    return Command(
        f"write {source.name} at {at_mib} MiB",
        (
            "dd",
            f"if={source}",
            f"of={img}",
            "bs=1M",
            f"seek={at_mib}",
            "conv=notrunc,sparse",
            "status=none",
        ),
    )


def _copy_kernel(ws: Workspace) -> tuple[str, ...]:
    script = 'cp -L "$0"/boot/vmlinuz-* "$0"/boot/initrd.img-* "$1"/'
    return ("sh", "-c", script, str(ws.rootfs), str(ws.out))


def split_boot(description: Description, ws: Workspace) -> None:
    """Move what raspi-firmware put in /boot/firmware to the slot's FAT tree, its root named
    by slot A's PARTUUID; the first FAT gets autoboot.txt and the boot files the layers
    declare (guichet.toml); the mount point stays empty in the root."""
    firmware = ws.rootfs / "boot" / "firmware"
    for tree in (ws.bootfs, ws.firmwarefs):
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir(parents=True)
    if firmware.is_dir():
        for entry in firmware.iterdir():
            shutil.move(entry, ws.bootfs / entry.name)
    firmware.mkdir(parents=True, exist_ok=True)
    cmdline = ws.bootfs / "cmdline.txt"
    old = cmdline.read_text(encoding="utf-8") if cmdline.exists() else ""
    cmdline.write_text(root_cmdline(old, PARTUUIDS["root-a"]), encoding="utf-8")
    (ws.firmwarefs / "autoboot.txt").write_text(autoboot_txt(), encoding="utf-8")
    for layer in description.layers:
        for spec in layer.boot_files:
            write_file(description, layer, spec, ws.firmwarefs)


def install_keyring(keyring: Path, rootfs: Path) -> None:
    """The CA RAUC checks bundles against (/etc/rauc/system.conf's [keyring] path)."""
    target = rootfs / "etc" / "rauc" / "keyring.pem"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = keyring.read_text(encoding="ascii")
    if not re.search(r"-----BEGIN CERTIFICATE-----", text):
        raise ValueError(f"{keyring}: no PEM certificate in it")
    target.write_text(text, encoding="ascii")
    target.chmod(0o644)


def manifest_path(description: Description, ws: Workspace) -> Path:
    return ws.out / f"{output_name(description)}.img.manifest.json"


def summary(description: Description, ws: Workspace, total_s: float) -> str:
    img = ws.out / f"{output_name(description)}.img"
    xz = img.with_name(img.name + ".xz")
    raw_mib = img.stat().st_size / 2**20 if img.exists() else 0.0
    xz_mib = xz.stat().st_size / 2**20 if xz.exists() else 0.0
    return (
        f"image: {xz}\n"
        f"  raw {raw_mib:.0f} MiB, xz {xz_mib:.0f} MiB, built in {total_s / 60:.1f} min\n"
        f"  manifest {img.with_name(img.name + '.manifest.json')}\n"
    )
