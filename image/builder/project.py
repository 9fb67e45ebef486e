"""The project stage: the cached base unpacked, the layers' files, the project's venv, hooks.

Only the venv, the hooks and ``systemctl enable`` run arm64 code (a minute or two under
qemu-user); files are written from the host. Then the writable paths are laid out: the
``persistent`` ones move to the data partition's tree and the fstab is generated.
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from image.builder.model import Description, DescriptionError, FileSpec, Layer
from image.builder.steps import Action, Command, Step, chroot
from image.builder.workspace import Workspace

__all__ = ["Description", "fstab", "project_plan"]

WHEELS_IN_CHROOT = "/tmp/guichet-wheels"  # noqa: S108 - inside the image's root, removed after
DATA_LABEL = "guichet-data"
BOOT_LABEL = "RASPIFIRM"  # the label raspi-firmware's fstab line expects
ROOT_LABEL = "root"
PERSIST_DIR = "persistant"  # on the data partition: bind-mount sources
TMPFS_SIZE = "64M"
WORLD_WRITABLE = {"/var/tmp"}  # noqa: S108 - sticky, like /tmp (a mount point, not a file)
# Extra wheels are fetched for the counter, not the build host: binary ones (livekit's native
# WebRTC library, protobuf) exist per platform; pure-Python ones match any of these tags.
WHEEL_PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "amd64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
}
SUITE_PYTHON = {"trixie": "3.13"}  # the suite's python3, which runs the venv
# Imported once at build time, on Debian's versions: an incompatibility fails the build here,
# not on a counter in a town hall. The call's speech chain is made too: libopus's encoder and
# libwebrtc's audio processing (livekit's native library) must load on the image's arm64.
# Every module of the counter imports with the image's own libraries (appliance/smoke.py),
# and the native pieces load.
SMOKE_IMPORTS = (
    "import appliance.smoke;"
    ' assert appliance.smoke.main() == 0, "modules that do not import: above";'
    " import aiomqtt, pydantic; from livekit import rtc;"
    " from appliance.hw.audio import opus, webrtc;"
    " opus.OpusSpeechEncoder(); webrtc.WebrtcAudioProcessing()"
)


def project_plan(
    description: Description, workspace: Workspace, key: str, project_dir: Path
) -> list[Step]:
    steps: list[Step] = [
        Command("clean the work tree", ("rm", "-rf", str(workspace.work))),
        Command("mkdir work", ("mkdir", "-p", str(workspace.rootfs), str(workspace.wheels))),
        Command(
            "unpack the cached base",
            (
                "tar",
                "--extract",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-f",
                str(workspace.base_tar(key)),
                "-C",
                str(workspace.rootfs),
            ),
        ),
    ]
    for layer in description.layers:
        steps += _layer_files(description, layer, workspace.rootfs)
        if layer.install_project:
            steps += _wheels(description, layer, workspace, project_dir)
            steps += _venv(description, workspace)
        for hook in layer.project_hooks:
            script = description.substitute(hook, where=layer.name)
            steps.append(chroot(workspace.rootfs, script, what=f"{layer.name}: {script[:60]}"))
        if layer.enable:
            units = " ".join(layer.enable)
            steps.append(
                chroot(workspace.rootfs, f"systemctl enable {units}", what=f"enable {units}")
            )
    steps.append(
        Action("writable paths and fstab", lambda: lay_out_writable(description, workspace))
    )
    return steps


def _layer_files(description: Description, layer: Layer, rootfs: Path) -> list[Step]:
    def write() -> None:
        for spec in layer.files:
            write_file(description, layer, spec, rootfs)

    return [Action(f"{layer.name}: {len(layer.files)} files", write)] if layer.files else []


def write_file(description: Description, layer: Layer, spec: FileSpec, top: Path) -> Path:
    """Write one declared file (variables substituted) under ``top``; return its path."""
    where = f"layer '{layer.name}', {spec.dest}"
    if spec.content is not None:
        text = spec.content
    else:
        assert spec.source is not None  # the model guarantees one of the two
        text = (description.layer_dir(layer) / spec.source).read_text(encoding="utf-8")
    target = top / spec.dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(description.substitute(text, where=where), encoding="utf-8")
    target.chmod(int(spec.mode, 8))
    return target


def _target(description: Description) -> tuple[str, ...]:
    """pip's options to download wheels for the image's architecture and Python."""
    image = description.image
    if image.architecture not in WHEEL_PLATFORMS or image.suite not in SUITE_PYTHON:
        raise DescriptionError(
            f"no wheel platform known for {image.suite}/{image.architecture}"
            " (image/builder/project.py: WHEEL_PLATFORMS, SUITE_PYTHON)"
        )
    options: list[str] = []
    for platform in WHEEL_PLATFORMS[image.architecture]:
        options += ["--platform", platform]
    return (*options, "--python-version", SUITE_PYTHON[image.suite], "--implementation", "cp")


def _wheels(
    description: Description, layer: Layer, workspace: Workspace, project_dir: Path
) -> list[Step]:
    """The project's wheel (fresh each build) and the pinned extra wheels (cached), for the
    image's platform."""
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    steps: list[Step] = [
        Command(
            "build the project's wheel",
            (*pip, "wheel", "--no-deps", "-w", str(workspace.wheels), str(project_dir)),
        )
    ]
    for name in layer.extra_wheels:
        pin = f"{name}=={metadata.version(name)}"  # the version the tests ran with
        steps.append(
            Command(
                f"wheel {pin}",
                (
                    *pip,
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    *_target(description),
                    "-d",
                    str(workspace.wheel_cache),
                    pin,
                ),
            )
        )
        steps.append(
            Command(
                f"copy {pin}",
                (
                    "sh",
                    "-c",
                    f'cp "$0"/{wheel_name(name)}-{metadata.version(name)}-*.whl "$1"/',
                    str(workspace.wheel_cache),
                    str(workspace.wheels),
                ),
            )
        )
    return steps


def wheel_name(name: str) -> str:
    """A distribution's name as its wheel file spells it (PEP 427: ``-`` and ``.`` → ``_``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _venv(description: Description, workspace: Workspace) -> list[Step]:
    venv = description.image.variables["venv"]
    inside = workspace.rootfs / WHEELS_IN_CHROOT.lstrip("/")
    script = (
        f"python3 -m venv --system-site-packages --without-pip {venv}\n"
        f"{venv}/bin/python -m pip install --disable-pip-version-check --no-index --no-deps "
        f"--no-compile -q {WHEELS_IN_CHROOT}/*.whl\n"
        f"{venv}/bin/python -m pip check --disable-pip-version-check || true\n"
        f"{venv}/bin/python -c '{SMOKE_IMPORTS}'\n"
        f"{venv}/bin/python -m compileall -q -j 0 {venv}/lib\n"
        f"rm -rf {WHEELS_IN_CHROOT}\n"
    )
    return [
        Command("wheels into the root", ("cp", "-r", str(workspace.wheels), str(inside))),
        chroot(workspace.rootfs, script, what=f"venv {venv} on the system's site-packages"),
    ]


def fstab(description: Description) -> str:
    """No ``/`` line: the initramfs mounts the slot's root read-only from cmdline.txt's
    ``root=PARTUUID=… ro`` (both slots carry the label ``root``, so a label would be
    ambiguous). FAT read-only (first boot remounts it to remove secrets); data rw; tmpfs for
    the volatile paths; binds from the data partition for the persistent ones."""
    data = description.image.variables["data_dir"]
    lines = [
        "# Guichet Proche — generated by image/builder: the root is read-only at run time.",
        "# / is the booted slot (A or B), mounted read-only by the initramfs from cmdline.txt.",
        f"LABEL={BOOT_LABEL} /boot/firmware vfat ro,noatime,umask=0022 0 2",
        f"LABEL={DATA_LABEL} {data} ext4 rw,noatime,nosuid,nodev,commit=30 0 2",
    ]
    for layer in description.layers:
        for path in layer.volatile:
            mode = "1777" if path in WORLD_WRITABLE else "0755"
            lines.append(f"tmpfs {path} tmpfs nosuid,nodev,mode={mode},size={TMPFS_SIZE} 0 0")
    for layer in description.layers:
        for path in layer.persistent:
            source = f"{data}/{PERSIST_DIR}{path}"
            lines.append(f"{source} {path} none bind,x-systemd.requires-mounts-for={data} 0 0")
    return "\n".join(lines) + "\n"


def lay_out_writable(description: Description, workspace: Workspace) -> None:
    """Move each persistent path's content to the data tree (leaving an empty mount point),
    write the fstab and the data partition's skeleton."""
    rootfs, datafs = workspace.rootfs, workspace.datafs
    datafs.mkdir(parents=True, exist_ok=True)
    for layer in description.layers:
        for path in layer.persistent:
            inside, kept = rootfs / path.lstrip("/"), datafs / PERSIST_DIR / path.lstrip("/")
            kept.parent.mkdir(parents=True, exist_ok=True)
            if inside.is_dir() and not kept.exists():
                mode = inside.stat().st_mode & 0o7777
                shutil.move(inside, kept)  # a rename: owners, modes and xattrs are kept
                inside.mkdir()
                inside.chmod(mode)
            else:
                kept.mkdir(parents=True, exist_ok=True)
                inside.mkdir(parents=True, exist_ok=True)
    for layer in description.layers:
        for path in layer.volatile:  # the root is read-only: mount points must exist already
            (rootfs / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    systeme = datafs / "systeme"
    systeme.mkdir(exist_ok=True)
    localtime = systeme / "localtime"
    if not localtime.is_symlink():
        localtime.symlink_to("/usr/share/zoneinfo/Europe/Paris")
    (rootfs / "etc" / "fstab").write_text(fstab(description), encoding="utf-8")
    (rootfs / description.image.variables["data_dir"].lstrip("/")).mkdir(
        parents=True, exist_ok=True
    )
