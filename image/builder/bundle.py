"""The update bundle: ``./run image`` also makes ``guichet-proche-<version>.raucb``, the same
release as the card image, for the fleet server's rollouts (docs/updates.md).

A RAUC bundle in the ``verity`` format holding the root filesystem and the slot's boot FAT
exactly as they went into the card image (``work/parts/root.fs`` and ``boot.fs``), both
``adaptive=block-hash-index`` (a counter reuses the 4 KiB blocks its slots already have), and
a hook that points the written FAT's ``cmdline.txt`` at its own slot's root
(``image/bundle/hook.sh``). Bundles are made on the build host with its ``rauc`` (bookworm's
1.8 here; adaptive bundles exist since 1.8).

Signing: the key and certificate come from ``--update-key``/``--update-cert`` (or
``GUICHET_UPDATE_KEY``/``GUICHET_UPDATE_CERT``), the CA the counters trust from
``--update-keyring`` (``GUICHET_UPDATE_KEYRING``; the certificate itself when absent). The key
is a PEM file or a ``pkcs11:`` URI (a token holds the Pays's key). A key inside the project's
tree is refused, except under ``var/`` (ignored by git). Without any of them the build is a
*development* build: a throwaway « DEV » CA is made once in ``var/image/dev-update-key/``, its
certificate is the image's keyring, and the manifest says ``"update_signing": "dev"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from guichet.updates import COMPATIBLE
from image.builder import manifest
from image.builder.assemble import part_files
from image.builder.model import Description
from image.builder.steps import Action, Command, Step
from image.builder.workspace import Workspace

ENV_KEY, ENV_CERT, ENV_KEYRING = (
    "GUICHET_UPDATE_KEY",
    "GUICHET_UPDATE_CERT",
    "GUICHET_UPDATE_KEYRING",
)
DEV_DIR = "dev-update-key"
DEV_SUBJECT = "/O=Guichet Proche DEV/CN=Guichet Proche DEV update signer (not for counters)"
DEV_DAYS = 3650  # dev bundles built months later must still install on a dev image
HOOK = Path(__file__).resolve().parents[1] / "bundle" / "hook.sh"
ADAPTIVE = "block-hash-index"


class SigningError(Exception):
    """The signing material is incomplete, missing, or kept where it must not be."""


@dataclass(frozen=True)
class Signing:
    key: str  # a PEM file's path or a pkcs11: URI
    cert: Path
    keyring: Path  # the CA certificate(s) the counters trust: /etc/rauc/keyring.pem
    dev: bool


def dev_signing(workspace: Workspace) -> Signing:
    where = workspace.top / DEV_DIR
    cert = where / "dev-update.cert.pem"
    return Signing(str(where / "dev-update.key.pem"), cert, cert, dev=True)


def signing_from(
    env: Mapping[str, str],
    workspace: Workspace,
    project_dir: Path,
    *,
    key: str | None = None,
    cert: Path | None = None,
    keyring: Path | None = None,
) -> Signing:
    """Options first, then the environment; nothing at all: the development key."""
    key = key or env.get(ENV_KEY) or None
    cert = cert or (Path(env[ENV_CERT]) if env.get(ENV_CERT) else None)
    keyring = keyring or (Path(env[ENV_KEYRING]) if env.get(ENV_KEYRING) else None)
    if key is None and cert is None and keyring is None:
        return dev_signing(workspace)
    if key is None or cert is None:
        raise SigningError(
            f"give both the update key and its certificate ({ENV_KEY} and {ENV_CERT},"
            " or --update-key and --update-cert), or neither for a development build"
        )
    paths = [cert, keyring or cert]
    if not key.startswith("pkcs11:"):
        paths.append(Path(key))
        _outside_the_tree(Path(key), project_dir)
    for path in paths:
        if not path.is_file():
            raise SigningError(f"{path}: no such file")
    return Signing(key, cert, keyring or cert, dev=False)


def _outside_the_tree(key: Path, project_dir: Path) -> None:
    resolved, top = key.resolve(), project_dir.resolve()
    if resolved.is_relative_to(top) and not resolved.is_relative_to(top / "var"):
        raise SigningError(
            f"{key}: a signing key is never kept in the project's tree (only var/, ignored by"
            " git, holds the development one); keep the Pays's key outside it or on a token"
        )


def dev_key_plan(signing: Signing) -> list[Step]:
    """Make the development CA once (it is reused so dev bundles install on dev images)."""
    if not signing.dev or (Path(signing.key).exists() and signing.cert.exists()):
        return []
    where = signing.cert.parent
    return [
        Command("mkdir dev update key", ("mkdir", "-p", "-m", "0700", str(where))),
        Command(
            "DEV update signing key (throwaway, not for counters)",
            (
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:3072",
                "-nodes",
                "-days",
                str(DEV_DAYS),
                "-subj",
                DEV_SUBJECT,
                "-keyout",
                signing.key,
                "-out",
                str(signing.cert),
                "-addext",
                "basicConstraints=critical,CA:true",
                "-addext",
                "keyUsage=critical,digitalSignature,keyCertSign",
            ),
        ),
    ]


def manifest_text(version: str, *, build: str, architecture: str) -> str:
    """RAUC's manifest.raucm: both images adaptive, the hook on the boot FAT."""
    return (
        "[update]\n"
        f"compatible={COMPATIBLE}\n"
        f"version={version}\n"
        f"description=Guichet Proche {version}\n"
        f"build={build}\n"
        "\n[bundle]\nformat=verity\n"
        "\n[hooks]\nfilename=hook.sh\n"
        f"\n[image.rootfs]\nfilename=rootfs.ext4\nadaptive={ADAPTIVE}\n"
        f"\n[image.boot]\nfilename=boot.vfat\nadaptive={ADAPTIVE}\nhooks=post-install\n"
        f"\n[meta.guichet]\narchitecture={architecture}\n"
    )


def bundle_path(description: Description, ws: Workspace, version: str) -> Path:
    return ws.out / f"{description.image.name}-{version}.raucb"


def bundle_plan(
    description: Description, ws: Workspace, signing: Signing, version: str, *, build: str
) -> list[Step]:
    content = ws.work / "bundle"
    files = part_files(ws)
    bundle = bundle_path(description, ws, version)
    text = manifest_text(version, build=build, architecture=description.image.architecture)

    def write_content() -> None:
        (content / "manifest.raucm").write_text(text, encoding="utf-8")
        hook = content / "hook.sh"
        hook.write_bytes(HOOK.read_bytes())
        hook.chmod(0o755)

    return [
        Command("bundle: clean", ("rm", "-rf", str(content), str(bundle))),
        Command("bundle: mkdir", ("mkdir", "-p", str(content))),
        Command("bundle: root image", ("ln", "-f", str(files.root), str(content / "rootfs.ext4"))),
        Command("bundle: boot image", ("ln", "-f", str(files.boot), str(content / "boot.vfat"))),
        Action("bundle: manifest and hook", write_content),
        Command(
            f"bundle: rauc bundle {bundle.name}" + (" (DEV key)" if signing.dev else ""),
            (
                "rauc",
                "bundle",
                f"--cert={signing.cert}",
                f"--key={signing.key}",
                str(content),
                str(bundle),
            ),
        ),
        Command(
            "bundle: verify against the image's keyring",
            ("rauc", "info", f"--keyring={signing.keyring}", "--output-format=json", str(bundle)),
        ),
        Action("bundle: checksum", lambda: record(description, ws, bundle, signing)),
    ]


def record(description: Description, ws: Workspace, bundle: Path, signing: Signing) -> None:
    """``<bundle>.sha256`` beside it; the image's manifest names the bundle and its signing."""
    digest = manifest.sha256(bundle)
    bundle.with_name(bundle.name + ".sha256").write_text(
        f"{digest}  {bundle.name}\n", encoding="utf-8"
    )
    path = ws.out / f"{description.image.name}.img.manifest.json"
    if not path.exists():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    data["update_bundle"] = {
        "file": bundle.name,
        "bytes": bundle.stat().st_size,
        "sha256": digest,
        "adaptive": ADAPTIVE,
    }
    data["update_signing"] = "dev" if signing.dev else "pays"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
