"""An uploaded RAUC bundle's checks (docs/updates.md, "Release"): its signature by the real
``rauc info --keyring=<the Pays's update CA>`` — never by our own CMS code —, then what its
manifest says: the counters' compatible string, an image for the root slot, a version newer
than the newest release. Every refusal is one French sentence (``BundleError``).

``read_bundle`` runs a program and reads the whole file: a web handler calls it through
``asyncio.to_thread``. ``parse_rauc_info`` and ``check_manifest`` are pure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_server.errors import BundleError
from guichet.updates import (
    ARCHITECTURE,
    COMPATIBLE,
    is_newer,
    is_valid_version,
)

logger = logging.getLogger(__name__)

RAUC_TIMEOUT_S = 120  # reading a 400 MB bundle's signature and manifest: seconds, not minutes
ROOT_SLOT_CLASS = "rootfs"  # the slot class of the counters' root partitions (RAUC system.conf)
META_SECTION = "guichet"  # the manifest's [meta.guichet]; RAUC >= 1.9 reports it in JSON
_SIGNER_RE = re.compile(r"Verified (?:inline |detached )?signature by '([^']*)'")
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``rauc info`` says of a bundle once its signature is accepted."""

    compatible: str
    version: str
    description: str | None
    build: str | None
    slot_classes: tuple[str, ...]
    adaptive: bool  # every image has an adaptive method (range requests fetch what changed)
    architecture: str | None  # [meta.guichet] architecture, when RAUC reports meta sections


@dataclass(frozen=True, slots=True)
class BundleInfo:
    manifest: Manifest
    signer: str | None  # the signing certificate's subject, as RAUC names it
    size: int
    sha256: str


def parse_rauc_info(text: str) -> Manifest:
    """``rauc info --output-format=json``'s output; BundleError if it is not one."""
    try:
        data = json.loads(text)
        images = [(cls, image) for entry in data["images"] for cls, image in entry.items()]
        meta = data.get("meta") or {}
        return Manifest(
            compatible=str(data["compatible"]),
            version=str(data["version"] or ""),
            description=data.get("description"),
            build=data.get("build"),
            slot_classes=tuple(cls for cls, _image in images),
            adaptive=bool(images) and all(image.get("adaptive") for _cls, image in images),
            architecture=_meta(meta, "architecture"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BundleError("Le manifeste du paquet est illisible.") from None


def check_manifest(manifest: Manifest, newest_release: str | None) -> None:
    """Refuse a bundle that is not for the counters or not newer than ``newest_release``."""
    if manifest.compatible != COMPATIBLE:
        raise BundleError(
            f"Ce paquet est prévu pour « {manifest.compatible} », pas pour les guichets"
            f" (« {COMPATIBLE} »)."
        )
    if manifest.architecture is not None and manifest.architecture != ARCHITECTURE:
        raise BundleError(
            f"Ce paquet est construit pour l'architecture « {manifest.architecture} »,"
            f" pas « {ARCHITECTURE} »."
        )
    if ROOT_SLOT_CLASS not in manifest.slot_classes:
        raise BundleError("Ce paquet ne contient pas de système pour les guichets (rootfs).")
    if not is_valid_version(manifest.version):
        raise BundleError(
            f"Numéro de version illisible : « {manifest.version} » (attendu : 1.5.0, par exemple)."
        )
    if newest_release is not None and not is_newer(manifest.version, newest_release):
        raise BundleError(
            f"La version {manifest.version} n'est pas plus récente que la dernière publiée"
            f" ({newest_release})."
        )


def read_bundle(path: Path, keyring: Path, *, rauc: str = "rauc") -> BundleInfo:
    """Verify the bundle's signature with RAUC against ``keyring`` and read its manifest."""
    program = shutil.which(rauc)
    if program is None:
        raise BundleError("Le programme rauc est absent du serveur : paquet impossible à vérifier.")
    argv = [program, "info", f"--keyring={keyring}", "--output-format=json", str(path)]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, text=True, timeout=RAUC_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BundleError("La vérification du paquet a pris trop de temps.") from None
    if done.returncode != 0:
        logger.info("bundle refused by rauc", extra={"rauc_error": _last_line(done.stderr)})
        raise BundleError(_refusal(done.stderr))
    signer = _SIGNER_RE.search(done.stderr)
    size, digest = _file_digest(path)
    return BundleInfo(
        manifest=parse_rauc_info(done.stdout),
        signer=signer.group(1) if signer else None,
        size=size,
        sha256=digest,
    )


def check_upload(
    path: Path, keyring: Path, newest_release: str | None, *, rauc: str = "rauc"
) -> BundleInfo:
    """Everything an upload checks, in order: signature, manifest, version."""
    info = read_bundle(path, keyring, rauc=rauc)
    check_manifest(info.manifest, newest_release)
    return info


def _refusal(stderr: str) -> str:
    if "signature verification failed" in stderr.lower():  # RAUC's words, any cause
        return (
            "Signature refusée : ce paquet n'est pas signé par l'autorité de mise à jour du Pays."
        )
    return "Ce fichier n'est pas un paquet de mise à jour lisible (RAUC)."


def _meta(meta: Any, key: str) -> str | None:
    section = meta.get(META_SECTION) if isinstance(meta, dict) else None
    value = section.get(key) if isinstance(section, dict) else None
    return str(value) if value is not None else None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
