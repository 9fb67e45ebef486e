"""What went into an image: package versions, project version and commit, sizes, timings.

Written beside the image as ``<name>.img.manifest.json`` with ``<name>.img.xz.sha256``.
snapshot.debian.org is not reachable from the build machine, so the exact package list is
what makes a build reproducible on demand.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import guichet
from image.builder.model import Description
from image.builder.workspace import Workspace

CHUNK = 1 << 20


def dpkg_packages(rootfs: Path) -> dict[str, str]:
    """Installed packages and versions, read from the image's dpkg status (no emulation)."""
    status = rootfs / "var" / "lib" / "dpkg" / "status"
    packages: dict[str, str] = {}
    if not status.exists():
        return packages
    for stanza in status.read_text(encoding="utf-8").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            arch = fields.get("Architecture", "")
            key = (
                fields["Package"] if arch in ("all", "arm64", "") else f"{fields['Package']}:{arch}"
            )
            packages[key] = fields.get("Version", "?")
    return dict(sorted(packages.items()))


def git_commit(project_dir: Path) -> str:
    """The commit, with ``-dirty`` when the work tree has changes (``unknown`` outside git)."""
    try:
        head = subprocess.run(  # noqa: S603
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(project_dir), "status", "--porcelain"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write(
    description: Description,
    ws: Workspace,
    img: Path,
    total_mib: int,
    timings: dict[str, float],
) -> Path:
    xz = img.with_name(img.name + ".xz")
    digest = sha256(xz)
    xz.with_name(xz.name + ".sha256").write_text(f"{digest}  {xz.name}\n", encoding="utf-8")
    packages = dpkg_packages(ws.rootfs)
    data = {
        "image": description.image.name,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "project_version": guichet.__version__,
        "git_commit": git_commit(description.root.parent),
        "debian": {
            "suite": description.image.suite,
            "architecture": description.image.architecture,
            "components": description.image.components,
            "mirror": description.image.mirror,
        },
        "layers": [layer.name for layer in description.layers],
        "sizes": {
            "raw_bytes": img.stat().st_size,
            "raw_mib": total_mib,
            "xz_bytes": xz.stat().st_size,
            "xz_sha256": digest,
        },
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "package_count": len(packages),
        "packages": packages,
    }
    path = img.with_name(img.name + ".manifest.json")
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def record_total(path: Path, total_s: float) -> None:
    """Add the whole build's duration, known only once the manifest is written."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["timings_s"]["total_s"] = round(total_s, 1)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
