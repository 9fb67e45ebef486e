"""An uploaded bundle's checks (fleet_server/updates/bundle.py) on real RAUC bundles: each test
builds a tiny one with ``rauc bundle`` (a squashfs of a small directory), signed with a
throwaway certificate made by openssl, and the server verifies it with ``rauc info``."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from pathlib import Path

import pytest

from fleet_server.errors import BundleError
from fleet_server.updates.bundle import (
    Manifest,
    check_manifest,
    check_upload,
    parse_rauc_info,
    read_bundle,
)
from guichet.updates import COMPATIBLE

SUBJECT = "/O=Pays Test/CN=Guichet Proche mises a jour"


def _run(*argv: str | Path) -> None:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _certificate(where: Path, subject: str) -> tuple[Path, Path]:
    key, cert = where / "key.pem", where / "cert.pem"
    where.mkdir(parents=True, exist_ok=True)
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", key, "-out", cert, "-subj", subject,
        "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("ca"), SUBJECT)


def _bundle(
    where: Path,
    signer: tuple[Path, Path],
    *,
    version: str = "1.5.0",
    compatible: str = COMPATIBLE,
    slot_class: str = "rootfs",
    adaptive: bool = False,
) -> Path:
    """A real RAUC bundle (verity format) of a tiny root image."""
    root, content = where / "root", where / "content"
    root.mkdir(parents=True)
    content.mkdir()
    (root / "etc-os-release").write_text("Guichet Proche\n", encoding="utf-8")
    # Random bytes: squashfs cannot compress them below the 4 KiB RAUC needs at least.
    (root / "blob").write_bytes(random.Random(version).randbytes(64 * 1024))
    _run("mksquashfs", root, content / "rootfs.img", "-quiet", "-noappend")
    adaptive_line = "adaptive=block-hash-index\n" if adaptive else ""
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n"
        f"description=Guichet Proche {version}\nbuild=20250318\n\n"
        "[bundle]\nformat=verity\n\n"
        f"[image.{slot_class}]\nfilename=rootfs.img\n{adaptive_line}",
        encoding="utf-8",
    )
    key, cert = signer
    bundle = where / "guichet-proche.raucb"
    _run("rauc", "bundle", f"--cert={cert}", f"--key={key}", content, bundle)
    return bundle


def test_a_bundle_signed_by_the_pays_is_read(tmp_path: Path, signer: tuple[Path, Path]) -> None:
    bundle = _bundle(tmp_path, signer)
    info = check_upload(bundle, signer[1], newest_release="1.4.2")
    assert info.manifest.version == "1.5.0"
    assert info.manifest.compatible == COMPATIBLE
    assert info.manifest.slot_classes == ("rootfs",)
    assert info.signer is not None
    assert "Guichet Proche mises a jour" in info.signer
    data = bundle.read_bytes()
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_the_first_release_has_nothing_to_be_newer_than(
    tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    assert check_upload(_bundle(tmp_path, signer), signer[1], None).manifest.version == "1.5.0"


def test_an_adaptive_bundle_says_so(tmp_path: Path, signer: tuple[Path, Path]) -> None:
    info = read_bundle(_bundle(tmp_path, signer, adaptive=True), signer[1])
    assert info.manifest.adaptive
    assert not read_bundle(_bundle(tmp_path / "plain", signer), signer[1]).manifest.adaptive


def test_a_bundle_signed_by_someone_else_is_refused(
    tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    intruder = _certificate(tmp_path / "intruder", "/CN=Intrus")
    bundle = _bundle(tmp_path / "b", intruder)
    with pytest.raises(BundleError, match="Signature refusée"):
        check_upload(bundle, signer[1], None)


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path, signer: tuple[Path, Path]) -> None:
    junk = tmp_path / "photo.raucb"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not a bundle at all" * 100)
    with pytest.raises(BundleError, match="pas un paquet de mise à jour lisible"):
        check_upload(junk, signer[1], None)


@pytest.mark.parametrize(
    ("changes", "newest", "message"),
    [
        ({"compatible": "autre-appareil-x86"}, None, "prévu pour « autre-appareil-x86 »"),
        ({"version": "1.4.2"}, "1.4.2", "n'est pas plus récente que la dernière publiée"),
        ({"version": "1.4.10"}, "1.5", "n'est pas plus récente"),
        ({"version": "latest"}, None, "Numéro de version illisible"),
        ({"slot_class": "appfs"}, None, "ne contient pas de système"),
    ],
)
def test_a_manifest_not_for_the_counters_is_refused_in_french(
    tmp_path: Path,
    signer: tuple[Path, Path],
    changes: dict[str, str],
    newest: str | None,
    message: str,
) -> None:
    bundle = _bundle(tmp_path, signer, **changes)  # type: ignore[arg-type]
    with pytest.raises(BundleError, match=message):
        check_upload(bundle, signer[1], newest)


def test_without_rauc_the_server_says_it_cannot_check(
    tmp_path: Path, signer: tuple[Path, Path]
) -> None:
    with pytest.raises(BundleError, match="rauc est absent"):
        read_bundle(tmp_path / "x.raucb", signer[1], rauc="rauc-absent-du-serveur")


# --- the manifest as RAUC reports it (pure) ----------------------------------------------------

RAUC_JSON = {
    "compatible": COMPATIBLE,
    "version": "1.5.0",
    "description": None,
    "build": None,
    "hooks": [],
    "images": [{"rootfs": {"filename": "rootfs.img", "adaptive": ["block-hash-index"]}}],
}


def test_a_newer_rauc_s_meta_section_is_checked_for_the_architecture() -> None:
    report = dict(RAUC_JSON, meta={"guichet": {"architecture": "armhf"}})
    manifest = parse_rauc_info(json.dumps(report))
    assert manifest.architecture == "armhf"
    with pytest.raises(BundleError, match="architecture « armhf »"):
        check_manifest(manifest, None)
    arm64 = parse_rauc_info(
        json.dumps(dict(RAUC_JSON, meta={"guichet": {"architecture": "arm64"}}))
    )
    check_manifest(arm64, "1.4")


@pytest.mark.parametrize("text", ["", "[]", '{"version": "1"}', '{"images": 3}'])
def test_an_unreadable_report_is_refused(text: str) -> None:
    with pytest.raises(BundleError, match="illisible"):
        parse_rauc_info(text)


def test_a_manifest_is_plain_data() -> None:
    manifest = parse_rauc_info(json.dumps(RAUC_JSON))
    assert manifest == Manifest(
        compatible=COMPATIBLE,
        version="1.5.0",
        description=None,
        build=None,
        slot_classes=("rootfs",),
        adaptive=True,
        architecture=None,
    )
