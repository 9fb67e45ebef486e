"""The update bundle ``./run image`` makes beside the card (image/builder/bundle.py): its
manifest, its signing material, its commands, and a real signed bundle built by the same plan
on a tiny root, read back with ``rauc info``; the hook that points a slot's FAT at its root."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from guichet.updates import COMPATIBLE
from image.builder import assemble, bundle
from image.builder.model import Description, load_description
from image.builder.steps import Action, Command, run_plan
from image.builder.workspace import Workspace

IMAGE_DIR = Path(__file__).parents[2] / "image"
PROJECT_DIR = IMAGE_DIR.parent


@pytest.fixture(scope="module")
def description() -> Description:
    return load_description(IMAGE_DIR)


def test_the_manifest_is_verity_adaptive_with_the_hook_on_the_boot_fat() -> None:
    text = bundle.manifest_text("1.4.0", build="abc123", architecture="arm64")
    sections: dict[str, dict[str, str]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            sections[section] = {}
        elif line:
            key, value = line.split("=", 1)
            sections[section][key] = value
    assert sections["update"]["compatible"] == COMPATIBLE
    assert sections["update"]["version"] == "1.4.0"
    assert sections["update"]["build"] == "abc123"
    assert sections["bundle"] == {"format": "verity"}
    assert sections["hooks"] == {"filename": "hook.sh"}
    assert sections["image.rootfs"] == {
        "filename": "rootfs.ext4",
        "adaptive": "block-hash-index",
    }
    assert sections["image.boot"] == {
        "filename": "boot.vfat",
        "adaptive": "block-hash-index",
        "hooks": "post-install",
    }
    assert sections["meta.guichet"] == {"architecture": "arm64"}


def test_without_a_key_the_build_is_a_development_one(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "var" / "image")
    signing = bundle.signing_from({}, ws, tmp_path)
    assert signing.dev
    assert signing.keyring == signing.cert
    assert "dev" in signing.cert.name
    assert signing.cert.parent == ws.top / "dev-update-key"
    (openssl,) = [c.argv for c in bundle.dev_key_plan(signing) if c.argv[0] == "openssl"]
    assert "DEV" in openssl[openssl.index("-subj") + 1]
    assert openssl[openssl.index("-keyout") + 1] == signing.key


def test_the_pays_key_comes_from_the_environment_or_the_options(tmp_path: Path) -> None:
    keys = tmp_path / "cles-pays"
    keys.mkdir()
    for name in ("signer.key.pem", "signer.cert.pem", "ca.pem"):
        (keys / name).write_text("x")
    ws, project = Workspace(tmp_path / "projet" / "var" / "image"), tmp_path / "projet"
    env = {
        bundle.ENV_KEY: str(keys / "signer.key.pem"),
        bundle.ENV_CERT: str(keys / "signer.cert.pem"),
        bundle.ENV_KEYRING: str(keys / "ca.pem"),
    }
    signing = bundle.signing_from(env, ws, project)
    assert not signing.dev
    assert signing.keyring == keys / "ca.pem"
    assert bundle.dev_key_plan(signing) == []
    token = bundle.signing_from(
        {}, ws, project, key="pkcs11:token=pays;object=maj", cert=keys / "signer.cert.pem"
    )
    assert token.key.startswith("pkcs11:")
    assert token.keyring == keys / "signer.cert.pem"  # the certificate itself when no CA


def test_incomplete_or_misplaced_keys_are_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "var" / "image")
    with pytest.raises(bundle.SigningError, match="both the update key and its certificate"):
        bundle.signing_from({bundle.ENV_KEY: "/nowhere/key.pem"}, ws, tmp_path)
    with pytest.raises(bundle.SigningError, match="no such file"):
        bundle.signing_from(
            {bundle.ENV_KEY: "pkcs11:x", bundle.ENV_CERT: str(tmp_path / "absent.pem")},
            ws,
            tmp_path,
        )
    (tmp_path / "image").mkdir()
    inside = tmp_path / "image" / "key.pem"
    inside.write_text("x")
    with pytest.raises(bundle.SigningError, match="never kept in the project's tree"):
        bundle.signing_from({bundle.ENV_KEY: str(inside), bundle.ENV_CERT: str(inside)}, ws,
                            tmp_path)  # fmt: skip


def test_the_bundle_plan_signs_then_verifies_with_the_images_keyring(
    description: Description, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path)
    signing = bundle.Signing("pkcs11:token=pays", tmp_path / "c.pem", tmp_path / "ca.pem", False)
    steps = bundle.bundle_plan(description, ws, signing, "1.4.0", build="abc")
    commands = [s.argv for s in steps if isinstance(s, Command)]
    out = str(ws.out / "guichet-proche-1.4.0.raucb")
    assert ("ln", "-f", str(ws.parts / "root.fs"), str(ws.work / "bundle" / "rootfs.ext4")) in (
        commands
    )
    assert ("ln", "-f", str(ws.parts / "boot.fs"), str(ws.work / "bundle" / "boot.vfat")) in (
        commands
    )
    rauc = [c for c in commands if c[0] == "rauc"]
    assert rauc == [
        ("rauc", "bundle", f"--cert={tmp_path / 'c.pem'}", "--key=pkcs11:token=pays",
         str(ws.work / "bundle"), out),
        ("rauc", "info", f"--keyring={tmp_path / 'ca.pem'}", "--output-format=json", out),
    ]  # fmt: skip


def test_a_real_bundle_from_the_same_plan_on_a_tiny_root(
    description: Description, tmp_path: Path
) -> None:
    """The dev key made by its plan, the keyring installed in the root, the parts made by the
    assemble plan, the bundle by the bundle plan: RAUC reads it back with the image's keyring."""
    ws = Workspace(tmp_path / "var" / "image")
    signing = bundle.signing_from({}, ws, tmp_path)
    run_plan(bundle.dev_key_plan(signing))
    firmware = ws.rootfs / "boot" / "firmware"
    firmware.mkdir(parents=True)
    (firmware / "cmdline.txt").write_text("console=tty0 root=PARTLABEL=root-a rw\n")
    (ws.rootfs / "etc").mkdir()
    (ws.rootfs / "etc" / "blob").write_bytes(random.Random(2).randbytes(64 * 1024))
    for name in ("vmlinuz-6.12.0-arm64", "initrd.img-6.12.0-arm64"):
        (ws.rootfs / "boot" / name).write_bytes(b"\0" * 16)
    ws.datafs.mkdir(parents=True)
    parts = [
        s
        for s in assemble.assemble_plan(description, ws, rootfs_mib=1, keyring=signing.keyring)
        if not (isinstance(s, Command) and s.argv[0] in ("xz", "truncate", "sfdisk", "dd"))
        and not (isinstance(s, Action) and "manifest" in s.what)
    ]
    run_plan(parts)
    assert (ws.rootfs / "etc/rauc/keyring.pem").read_text() == signing.cert.read_text()
    run_plan(bundle.bundle_plan(description, ws, signing, "1.4.0", build="abc"))
    raucb = ws.out / "guichet-proche-1.4.0.raucb"
    done = subprocess.run(
        ["rauc", "info", f"--keyring={ws.rootfs / 'etc/rauc/keyring.pem'}",
         "--output-format=json", str(raucb)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(done.stdout)
    assert info["compatible"] == COMPATIBLE
    assert info["version"] == "1.4.0"
    images = {next(iter(i)): i[next(iter(i))] for i in info["images"]}
    assert set(images) == {"rootfs", "boot"}
    assert images["rootfs"]["filename"] == "rootfs.ext4"
    assert images["rootfs"]["size"] == (ws.parts / "root.fs").stat().st_size
    assert images["boot"]["hooks"] == ["post-install"]
    assert info["hooks"] == []  # install hooks: none; the slot hook is on the boot image
    digest = raucb.with_name(raucb.name + ".sha256").read_text().split()[0]
    assert len(digest) == 64
    intruder = tmp_path / "intrus"
    other = bundle.Signing(str(intruder / "k.pem"), intruder / "c.pem", intruder / "c.pem", True)
    run_plan(bundle.dev_key_plan(other))
    refused = subprocess.run(
        ["rauc", "info", f"--keyring={other.cert}", str(raucb)], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0


def _hook(tmp_path: Path, parent: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the bundle's hook as RAUC would after writing a boot FAT, with a fake blkid."""
    bin_dir, labels, mnt = tmp_path / "bin", tmp_path / "by-partlabel", tmp_path / "mnt"
    for d in (bin_dir, labels, mnt):
        d.mkdir(exist_ok=True)
    blkid = bin_dir / "blkid"
    blkid.write_text(
        '#!/bin/sh\ncase "$5" in */root-a) echo aaaa-1;; */root-b) echo bbbb-2;; *) exit 2;; esac\n'
    )
    blkid.chmod(0o755)
    (mnt / "cmdline.txt").write_text("root=PARTUUID=aaaa-1 ro console=tty0 quiet\n")
    return subprocess.run(
        ["sh", str(bundle.HOOK), "slot-post-install"],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "GUICHET_PARTLABEL_DIR": str(labels),
            "RAUC_SLOT_NAME": "boot.1",
            "RAUC_SLOT_CLASS": "boot",
            "RAUC_SLOT_PARENT": parent,
            "RAUC_SLOT_MOUNT_POINT": str(mnt),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_hook_points_slot_b_fat_at_root_b(tmp_path: Path) -> None:
    done = _hook(tmp_path, "rootfs.1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mnt/cmdline.txt").read_text() == (
        "root=PARTUUID=bbbb-2 ro console=tty0 quiet\n"
    )
    assert not (tmp_path / "mnt/cmdline.txt.tmp").exists()


def test_the_hook_leaves_other_slots_alone_and_refuses_an_unknown_parent(
    tmp_path: Path,
) -> None:
    assert _hook(tmp_path, "rootfs.1", RAUC_SLOT_CLASS="rootfs").returncode == 0
    assert "aaaa-1" in (tmp_path / "mnt/cmdline.txt").read_text()
    refused = _hook(tmp_path, "rootfs.7")
    assert refused.returncode != 0
    assert "unknown parent slot" in refused.stderr
    assert "aaaa-1" in (tmp_path / "mnt/cmdline.txt").read_text()
