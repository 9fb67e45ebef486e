"""The builder's plans — the commands a build would run — read without running them."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance import firstboot
from image.builder import assemble, base, project
from image.builder.model import VARIABLE_RE, Description, load_description
from image.builder.steps import Action, Command, Step, chroot, run_plan
from image.builder.workspace import Workspace

IMAGE_DIR = Path(__file__).parents[2] / "image"
TOOLS = {"mmdebstrap": "mmdebstrap 1.3.5", "qemu": "qemu-aarch64 version 7.2"}


@pytest.fixture(scope="module")
def description() -> Description:
    return load_description(IMAGE_DIR)


def _commands(steps: list[Step]) -> list[tuple[str, ...]]:
    return [s.argv for s in steps if isinstance(s, Command)]


def test_base_is_mmdebstrap_of_every_layers_packages(
    description: Description, tmp_path: Path
) -> None:
    key = base.cache_key(description, TOOLS)
    (argv,) = [a for a in _commands(base.base_plan(description, Workspace(tmp_path), key))
               if a[0] == "mmdebstrap"]  # fmt: skip
    assert "--arch=arm64" in argv
    assert "--variant=minbase" in argv
    assert "--components=main,non-free-firmware" in argv
    include = next(a for a in argv if a.startswith("--include="))
    assert include == "--include=" + ",".join(description.packages())
    assert any(a.startswith("--essential-hook=") and "FSTYPE=ext4" in a for a in argv)
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in argv
    assert argv[-3:] == ("trixie", str(tmp_path / "cache" / f"base-{key[:16]}.tar.partial"),
                         description.image.mirror)  # fmt: skip


def test_cache_key_follows_packages_and_tools_not_project_files(
    description: Description,
) -> None:
    key = base.cache_key(description, TOOLS)
    assert key == base.cache_key(description, dict(TOOLS))
    assert key != base.cache_key(description, {**TOOLS, "qemu": "qemu 9"})
    more = description.layers[0].model_copy(update={"packages": ["vim-tiny"]})
    other = description.model_copy(update={"layers": [more, *description.layers[1:]]})
    assert base.cache_key(other, TOOLS) != key
    new_file = description.layers[2].model_copy(update={"files": []})
    same = description.model_copy(update={"layers": [*description.layers[:2], new_file,
                                                     *description.layers[3:]]})  # fmt: skip
    assert base.cache_key(same, TOOLS) == key


def test_binfmt_is_mounted_only_when_needed() -> None:
    assert _commands(base.binfmt_plan(mounted=False))[0][:3] == ("mount", "-t", "binfmt_misc")
    assert [c[0] for c in _commands(base.binfmt_plan(mounted=True))] == [
        "update-binfmts",
        "arch-test",
    ]


def test_project_stage_unpacks_the_cache_and_builds_the_venv(
    description: Description, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path)
    steps = project.project_plan(description, ws, "k" * 64, IMAGE_DIR.parent)
    commands = _commands(steps)
    assert commands[2][:2] == ("tar", "--extract")
    assert str(ws.base_tar("k" * 64)) in commands[2]
    scripts = [c[-1] for c in commands if c[0] == "unshare"]
    venv = next(s for s in scripts if "venv" in s)
    assert "python3 -m venv --system-site-packages --without-pip /opt/guichet/venv" in venv
    assert "--no-index --no-deps" in venv
    assert "pip check" in venv
    assert any("z50-raspi-firmware" in s for s in scripts)
    assert "systemctl enable guichet.service guichet-trial-guard.service cups.service" in scripts
    assert any(c[-1].startswith("aiomqtt==") for c in commands)
    assert not any(VARIABLE_RE.search(s) for s in scripts)  # every @variable@ substituted
    assert isinstance(steps[-1], Action)
    assert "fstab" in steps[-1].what


def test_fstab_root_read_only_data_and_writable_paths(description: Description) -> None:
    table = project.fstab(description)
    lines = [line.split() for line in table.splitlines() if not line.startswith("#")]
    by_mount = {fields[1]: fields for fields in lines}
    assert "/" not in by_mount  # the initramfs mounts the booted slot, ro (cmdline.txt)
    assert by_mount["/boot/firmware"][0] == "LABEL=RASPIFIRM"
    assert "ro" in by_mount["/boot/firmware"][3]
    assert by_mount["/var/lib/guichet"][0] == "LABEL=guichet-data"
    assert by_mount["/var/spool"][2] == "tmpfs"  # printed documents never reach the card
    assert "mode=1777" in by_mount["/var/tmp"][3]
    journal = by_mount["/var/log/journal"]
    assert journal[0] == "/var/lib/guichet/persistant/var/log/journal"
    assert "bind" in journal[3]


def test_writable_paths_move_to_the_data_tree(description: Description, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    cups = ws.rootfs / "etc" / "cups"
    cups.mkdir(parents=True)
    (cups / "cupsd.conf").write_text("Listen /run/cups/cups.sock\n")
    cups.chmod(0o750)
    project.lay_out_writable(description, ws)
    moved = ws.datafs / "persistant" / "etc" / "cups" / "cupsd.conf"
    assert moved.read_text().startswith("Listen")
    assert list(cups.iterdir()) == []
    assert (cups.stat().st_mode & 0o777) == 0o750
    assert (ws.datafs / "persistant" / "var" / "log" / "journal").is_dir()
    assert (ws.rootfs / "etc" / "fstab").read_text() == project.fstab(description)
    assert (ws.datafs / "systeme" / "localtime").readlink().name == "Paris"
    assert (ws.rootfs / "var" / "lib" / "dhcp").is_dir()  # mount points made at build time


def test_assemble_layout_and_commands(description: Description, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    keyring = tmp_path / "ca.pem"
    steps = assemble.assemble_plan(description, ws, rootfs_mib=1000, keyring=keyring)
    layout = assemble.layout_for(description, 1000)
    assert layout.root_fs_mib % 4 == 0
    assert layout.root_mib % 4 == 0
    assert layout.root_fs_mib >= 1150 + assemble.ROOT_FS_EXTRA_MIB
    assert layout.root_mib == layout.root_fs_mib + 768  # room for later releases
    starts = [(p.number, p.name, p.start_mib, p.size_mib) for p in layout.parts()]
    r = layout.root_mib
    assert starts == [
        (1, "firmware", 4, 64),
        (2, "boot-a", 68, 256),
        (3, "boot-b", 324, 256),
        (4, "root-a", 580, r),
        (5, "root-b", 580 + r, r),
        (6, "data", 580 + 2 * r, 96),
    ]
    assert layout.total_mib == 580 + 2 * r + 96 + 1  # the backup GPT's MiB
    script = layout.sfdisk_script()
    assert script.startswith("label: gpt\n")
    assert f"start=8192, size=131072, type={assemble.FAT_TYPE}" in script
    assert 'name="root-b"' in script
    commands = _commands(steps)
    names = [c[0] for c in commands]
    assert names.count("mkfs.ext4") == 2
    assert names.count("mkfs.vfat") == 2
    assert "losetup" not in names
    assert "mount" not in names  # no loop device, no mount
    root = next(c for c in commands if c[0] == "mkfs.ext4" and "root" in c)
    assert root[-1] == f"{layout.root_fs_mib}M"
    assert str(ws.rootfs) in root
    writes = [c for c in commands if c[0] == "dd"]
    assert [w[4] for w in writes] == ["seek=4", "seek=68", "seek=580", f"seek={580 + 2 * r}"]
    sfdisk = next(s for s in steps if isinstance(s, Command) and s.argv[0] == "sfdisk")
    assert sfdisk.stdin == script
    assert ("xz", "-T0", "-3", "-k", "-f", str(ws.out / "guichet-proche.img")) in commands
    whats = [s.what for s in steps]
    assert whats.index("the update keyring") < whats.index("root: ext4 from the tree")


def test_autoboot_matches_the_tryboot_backend() -> None:
    """autoboot.txt's partitions are the ones rauc-tryboot.sh maps bootnames to."""
    backend = (IMAGE_DIR / "layers/counter/files/rauc-tryboot.sh").read_text()
    assert "A) echo 2 ;;" in backend
    assert "B) echo 3 ;;" in backend
    assert assemble.autoboot_txt() == (
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
    )
    conf = (IMAGE_DIR / "layers/counter/files/rauc-system.conf").read_text()
    for name in ("boot-a", "boot-b", "root-a", "root-b"):
        assert f"/dev/disk/by-partlabel/{name}\n" in conf
        assert name in assemble.PARTITION_NAMES


def test_cmdline_names_the_slot_root_read_only() -> None:
    raspi = "console=tty0 console=ttyS1,115200 root=PARTLABEL=root-a rw fsck.repair=yes quiet\n"
    assert assemble.root_cmdline(raspi, "abc-1") == (
        "root=PARTUUID=abc-1 ro console=tty0 console=ttyS1,115200 fsck.repair=yes quiet\n"
    )


def _tiny_tree(ws: Workspace) -> None:
    firmware = ws.rootfs / "boot" / "firmware"
    firmware.mkdir(parents=True)
    (firmware / "config.txt").write_text("[all]\n")
    (firmware / "cmdline.txt").write_text("console=tty0 root=PARTLABEL=root-a rw quiet\n")
    (ws.rootfs / "etc").mkdir()
    (ws.rootfs / "etc" / "os-release").write_text("PRETTY_NAME=Guichet Proche test\n")
    # incompressible, so the bundle's squashfs is over the 4 KiB RAUC needs
    (ws.rootfs / "etc" / "blob").write_bytes(random.Random(1).randbytes(64 * 1024))
    for name in ("vmlinuz-6.12.0-arm64", "initrd.img-6.12.0-arm64"):
        (ws.rootfs / "boot" / name).write_bytes(b"\0" * 16)
    ws.datafs.mkdir(parents=True)


def _assemble(description: Description, ws: Workspace, keyring: Path | None = None) -> Path:
    steps = [s for s in assemble.assemble_plan(description, ws, rootfs_mib=1, keyring=keyring)
             if not (isinstance(s, Command) and s.argv[0] == "xz")]  # fmt: skip
    steps = [s for s in steps if not (isinstance(s, Action) and "manifest" in s.what)]
    run_plan(steps)
    return ws.out / "guichet-proche.img"


def _fat_file(img: Path, at_mib: int, name: str) -> str:
    return subprocess.run(
        ["mtype", "-i", f"{img}@@{at_mib * 2**20}", f"::/{name}"], capture_output=True,
        text=True, check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    ).stdout  # fmt: skip


def test_the_ab_card_is_laid_out_with_the_real_tools(
    description: Description, tmp_path: Path
) -> None:
    """The real assemble stage on a tiny tree (no root needed, a few seconds; the image is
    sparse); ./run test installs fdisk, dosfstools and mtools."""
    for tool in ("sfdisk", "mkfs.vfat", "mcopy"):
        assert shutil.which(tool), f"{tool} is missing (apt-get install fdisk dosfstools mtools)"
    ws = Workspace(tmp_path)
    _tiny_tree(ws)
    img = _assemble(description, ws)
    layout = assemble.layout_for(description, 1)
    done = subprocess.run(["sfdisk", "--json", str(img)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    table = json.loads(done.stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert table["id"] == assemble.DISK_UUID
    parts = table["partitions"]
    assert [p["name"] for p in parts] == list(assemble.PARTITION_NAMES)
    assert [p["start"] // 2048 for p in parts] == [p.start_mib for p in layout.parts()]
    assert [p["size"] // 2048 for p in parts] == [p.size_mib for p in layout.parts()]
    assert [p["type"] for p in parts[:3]] == [assemble.FAT_TYPE] * 3
    assert [p["type"] for p in parts[3:]] == [assemble.LINUX_TYPE] * 3
    assert parts[3]["uuid"] == assemble.PARTUUIDS["root-a"].upper()
    assert table["lastlba"] < img.stat().st_size // 512 - 33  # room for the backup GPT
    # the first FAT: what the firmware reads before choosing a slot, and the technician's file
    assert _fat_file(img, 4, "autoboot.txt") == assemble.autoboot_txt()
    assert "[guichet]" in _fat_file(img, 4, "guichet.toml")
    # slot A's FAT: the firmware's files and the root by PARTUUID, read-only
    assert _fat_file(img, 68, "config.txt") == "[all]\n"
    root_a = assemble.PARTUUIDS["root-a"]
    assert _fat_file(img, 68, "cmdline.txt") == f"root=PARTUUID={root_a} ro console=tty0 quiet\n"
    # slot B is empty until the first update: zeros, nothing to compress
    with img.open("rb") as f:
        for part in ("boot-b", "root-b"):
            f.seek(layout.part(part).start_mib * 2**20)
            assert f.read(2**20) == b"\0" * 2**20
        f.seek(layout.part("root-a").start_mib * 2**20 + 1080)  # ext4 magic
        assert f.read(2) == b"\x53\xef"


def test_first_boot_grows_the_gpt_data_partition_to_the_card_end(
    description: Description, tmp_path: Path
) -> None:
    """firstboot's table step on the real image written to a larger « card »: sfdisk moves
    the backup GPT to the card's end, and the data partition takes everything before it."""
    ws = Workspace(tmp_path)
    _tiny_tree(ws)
    card = _assemble(description, ws)
    with card.open("r+b") as f:
        f.truncate(card.stat().st_size + 64 * 2**20)

    def run(argv: list[str], stdin: str | None = None) -> None:
        subprocess.run(argv, input=stdin, text=True, capture_output=True, check=True)

    firstboot.grow_table(str(card), "6", run)
    done = subprocess.run(["sfdisk", "--json", str(card)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    table = json.loads(done.stdout)["partitiontable"]
    data = table["partitions"][5]
    assert data["name"] == "data"
    assert data["start"] + data["size"] - 1 == table["lastlba"]
    assert table["lastlba"] == card.stat().st_size // 512 - 34  # backup GPT at the very end
    assert data["size"] // 2048 >= 96 + 64
    assert table["partitions"][4]["name"] == "root-b"  # the others untouched


def test_chroot_command_runs_a_script_in_a_private_mount_namespace(tmp_path: Path) -> None:
    command = chroot(tmp_path, "echo hi", what="x")
    assert command.argv[:3] == ("unshare", "--mount", "--fork")
    assert command.argv[-2:] == (str(tmp_path), "echo hi")


def test_extra_wheels_are_the_counters_platform(description: Description, tmp_path: Path) -> None:
    """livekit (the call's echo canceller) ships a native library: its wheel must be the
    Pi's (aarch64, trixie's Python 3.13), not the build host's."""
    steps = project.project_plan(description, Workspace(tmp_path), "k" * 64, IMAGE_DIR.parent)
    commands = _commands(steps)
    downloads = {c[-1].split("==")[0]: c for c in commands if "download" in c}
    assert {"aiomqtt", "livekit", "protobuf", "types-protobuf"} <= downloads.keys()
    livekit = downloads["livekit"]
    assert livekit[livekit.index("--platform") + 1] == "manylinux_2_28_aarch64"
    assert livekit[livekit.index("--python-version") + 1] == "3.13"
    copies = [c[2] for c in commands if c[0] == "sh" and "types_protobuf-" in c[2]]
    assert copies, "the wheel file is named types_protobuf-<version>-…"
    venv = next(c[-1] for c in commands if c[0] == "unshare" and "venv" in c[-1])
    assert "from livekit import rtc" in venv  # the native library loads on the Pi, at build
