"""The assemble stage: the three partitions made as files, then one MBR disk image.

No loop device and no mount: the FAT is made with ``mkfs.vfat -C`` and filled with mtools,
the ext4 ones with ``mkfs.ext4 -d``, the table with ``sfdisk`` on a plain file, and each
filesystem is copied in with ``dd conv=notrunc,sparse``. Layout (MiB, aligned for SD cards):

    0-4     MBR and gap
    p1      boot   FAT32  "RASPIFIRM"     firmware, kernel, initramfs, config.txt, guichet.toml
    p2      root   ext4   "root"          read-only at run time
    p3      data   ext4   "guichet-data"  grown to fill the card at first boot
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from image.builder import manifest
from image.builder.model import Description
from image.builder.project import BOOT_LABEL, DATA_LABEL, ROOT_LABEL, write_file
from image.builder.steps import Action, Command, Step
from image.builder.workspace import Workspace

FIRST_MIB = 4  # SD cards erase in 4 MiB blocks: align every partition on them
SECTORS_PER_MIB = 2048
ROOT_SLACK = 1.15  # ext4 metadata and inode tables on top of the files' size


@dataclass(frozen=True)
class Layout:
    boot_mib: int
    root_mib: int
    data_mib: int

    @property
    def total_mib(self) -> int:
        return FIRST_MIB + self.boot_mib + self.root_mib + self.data_mib

    def starts(self) -> tuple[int, int, int]:
        boot = FIRST_MIB
        root = boot + self.boot_mib
        return boot, root, root + self.root_mib

    def sfdisk_script(self) -> str:
        boot, root, data = self.starts()
        s = SECTORS_PER_MIB
        return (
            "label: dos\nunit: sectors\n"
            f"start={boot * s}, size={self.boot_mib * s}, type=c, bootable\n"
            f"start={root * s}, size={self.root_mib * s}, type=83\n"
            f"start={data * s}, size={self.data_mib * s}, type=83\n"
        )


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


def layout_for(description: Description, rootfs_mib: int) -> Layout:
    parts = description.image.partitions
    root = int(rootfs_mib * ROOT_SLACK) + parts.root_headroom_mib
    root += -root % FIRST_MIB
    return Layout(parts.boot_mib, root, parts.data_mib)


def output_name(description: Description) -> str:
    return description.image.name


def assemble_plan(
    description: Description,
    workspace: Workspace,
    timings: dict[str, float] | None = None,
    *,
    rootfs_mib: int | None = None,
) -> list[Step]:
    ws = workspace
    boot_files = Action("split /boot/firmware onto the FAT", lambda: split_boot(description, ws))
    layout = layout_for(description, measure_mib(ws.rootfs) if rootfs_mib is None else rootfs_mib)
    name = output_name(description)
    img = ws.out / f"{name}.img"
    boot_img, root_img, data_img = (ws.parts / f"{p}.fs" for p in ("boot", "root", "data"))
    boot_at, root_at, data_at = layout.starts()
    steps: list[Step] = [
        boot_files,
        Command("mkdir parts", ("mkdir", "-p", str(ws.parts), str(ws.out))),
        Command(
            "rm old parts", ("rm", "-f", str(boot_img), str(root_img), str(data_img), str(img))
        ),
        Command(
            "boot: FAT32",
            (
                "mkfs.vfat",
                "-C",
                "-F",
                "32",
                "-n",
                BOOT_LABEL,
                str(boot_img),
                str(layout.boot_mib * 1024),
            ),
        ),
        Command(
            "boot: copy files (mtools)",
            ("sh", "-c", 'mcopy -s -p -m -i "$0" "$1"/* ::/', str(boot_img), str(ws.bootfs)),
        ),
        _ext4("root", ROOT_LABEL, ws.rootfs, root_img, layout.root_mib),
        _ext4("data", DATA_LABEL, ws.datafs, data_img, layout.data_mib),
        Command("disk image", ("truncate", "-s", f"{layout.total_mib}M", str(img))),
        Command("partition table", ("sfdisk", "--quiet", str(img)), stdin=layout.sfdisk_script()),
        _dd(boot_img, img, boot_at),
        _dd(root_img, img, root_at),
        _dd(data_img, img, data_at),
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
    """Move what raspi-firmware put in /boot/firmware to the FAT tree; add the boot files
    the layers declare (guichet.toml); leave the mount point empty in the root."""
    firmware = ws.rootfs / "boot" / "firmware"
    if ws.bootfs.exists():
        shutil.rmtree(ws.bootfs)
    ws.bootfs.mkdir(parents=True)
    if firmware.is_dir():
        for entry in firmware.iterdir():
            shutil.move(entry, ws.bootfs / entry.name)
    firmware.mkdir(parents=True, exist_ok=True)
    for layer in description.layers:
        for spec in layer.boot_files:
            write_file(description, layer, spec, ws.bootfs)


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
