"""The builder's plans — the commands a build would run — read without running them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    assert "systemctl enable guichet.service cups.service" in scripts
    assert any(c[-1].startswith("aiomqtt==") for c in commands)
    assert not any(VARIABLE_RE.search(s) for s in scripts)  # every @variable@ substituted
    assert isinstance(steps[-1], Action)
    assert "fstab" in steps[-1].what


def test_fstab_root_read_only_data_and_writable_paths(description: Description) -> None:
    table = project.fstab(description)
    lines = [line.split() for line in table.splitlines() if not line.startswith("#")]
    by_mount = {fields[1]: fields for fields in lines}
    assert by_mount["/"][3].startswith("ro,")
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
    steps = assemble.assemble_plan(description, ws, rootfs_mib=1000)
    layout = assemble.layout_for(description, 1000)
    assert layout.root_mib % 4 == 0
    assert layout.root_mib >= 1150 + 256
    assert layout.starts() == (4, 260, 260 + layout.root_mib)
    script = layout.sfdisk_script()
    assert "start=8192, size=524288, type=c, bootable" in script
    commands = _commands(steps)
    names = [c[0] for c in commands]
    assert names.count("mkfs.ext4") == 2
    assert "mkfs.vfat" in names
    assert "losetup" not in names
    assert "mount" not in names  # no loop device, no mount
    root = next(c for c in commands if c[0] == "mkfs.ext4" and "root" in c)
    assert root[-1] == f"{layout.root_mib}M"
    assert str(ws.rootfs) in root
    sfdisk = next(s for s in steps if isinstance(s, Command) and s.argv[0] == "sfdisk")
    assert sfdisk.stdin == script
    assert ("xz", "-T0", "-3", "-k", "-f", str(ws.out / "guichet-proche.img")) in commands


def test_partitions_are_assembled_without_mounts(description: Description, tmp_path: Path) -> None:
    """The real assemble stage on a tiny tree (no root needed, ~1 s); ./run test installs
    sfdisk, dosfstools and mtools."""
    for tool in ("sfdisk", "mkfs.vfat", "mcopy"):
        assert shutil.which(tool), f"{tool} is missing (apt-get install fdisk dosfstools mtools)"
    ws = Workspace(tmp_path)
    (ws.rootfs / "boot" / "firmware").mkdir(parents=True)
    (ws.rootfs / "boot" / "firmware" / "config.txt").write_text("[all]\n")
    (ws.rootfs / "etc").mkdir()
    for name in ("vmlinuz-6.12.0-arm64", "initrd.img-6.12.0-arm64"):
        (ws.rootfs / "boot" / name).write_bytes(b"\0" * 16)
    ws.datafs.mkdir(parents=True)
    steps = [s for s in assemble.assemble_plan(description, ws, rootfs_mib=1)
             if not (isinstance(s, Command) and s.argv[0] == "xz")]  # fmt: skip
    steps = [s for s in steps if not (isinstance(s, Action) and "manifest" in s.what)]
    run_plan(steps)
    img = ws.out / "guichet-proche.img"
    table = subprocess.run(["sfdisk", "-d", str(img)], capture_output=True, text=True, check=True)
    assert table.stdout.count("type=83") == 2
    assert "type=c" in table.stdout
    listing = subprocess.run(
        ["mdir", "-b", "-i", f"{img}@@{4 * 2**20}", "::/"], capture_output=True, text=True,
        check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    ).stdout  # fmt: skip
    assert "guichet.toml" in listing
    assert "config.txt" in listing


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
