"""What a counter downloads for an update, against the full bundle (issue 13).

A counter streams its bundle (RAUC's ``verity`` format, HTTP range requests) and, with the
bundle's adaptive ``block-hash-index``, fetches only the 4 KiB blocks of the new root that
neither of its slots already holds; what it always reads is the manifest, the signature and
the indexes (32 bytes per 4 KiB block; compressed, as empty blocks share a hash). This bench
takes the built bundle N (``./run image``), extracts its root, and for two releases made
from it counts what a counter running N must fetch:

- **unchanged**: N again (a rebuild that changed nothing);
- **project-only**: every Python file of the project in the image's venv changed (a line
  appended to each, as a new release of our code would), with its version — the change a
  routine release makes, far more than the qemu check's version-only N+1.

Per release it prints the new root's blocks absent from N's, the squashfs blocks of the
bundle they fall in (RAUC reads the bundle's squashfs, which decompresses whole 128 KiB
blocks; their compressed size estimated from the bundle's overall compression), the indexes
(their size once compressed as the bundle's squashfs does), and the total against the full
bundle (the baseline, in the same run). The real bytes of a streamed install are measured
only in qemu (this machine has no nbd nor device-mapper): ``./run update-check``'s report,
printed alongside when present.

    .venv/bin/python bench/update_size.py [--bundle var/image/out/guichet-proche-X.raucb]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 4096  # RAUC's adaptive block size
PROJECT_PACKAGES = ("appliance", "guichet")  # what the counter's venv holds of ours
INDEXES = ("rootfs.ext4.block-hash-index", "boot.vfat.block-hash-index")


def block_hashes(image: Path) -> list[bytes]:
    out = []
    with image.open("rb") as stream:
        while block := stream.read(BLOCK):
            out.append(hashlib.sha256(block.ljust(BLOCK, b"\0")).digest())
    return out


def squashfs_block_size(bundle: Path) -> int:
    said = subprocess.run(["unsquashfs", "-s", str(bundle)], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    match = re.search(r"Block size (\d+)", said)
    return int(match.group(1)) if match else 131072


def project_release(source: Path, target: Path, scratch: Path) -> int:
    """``target``: ``source`` with every project Python file changed; how many."""
    from image.update_check import debugfs, metadata_path, release_root

    release_root(source, target, "9.9.9", broken=False)
    site = metadata_path(target).rsplit("/", 2)[0]
    commands, changed = [], 0
    for package in PROJECT_PACKAGES:
        local = scratch / package
        debugfs(target, f"rdump {site}/{package} {scratch}")
        for path in sorted(local.rglob("*.py")):
            path.write_text(path.read_text(encoding="utf-8") + "# release 9.9.9\n")
            inside = f"{site}/{path.relative_to(scratch).as_posix()}"
            commands += [f"rm {inside}", f"write {path} {inside}"]
            changed += 1
    script = scratch / "debugfs.cmd"
    script.write_text("\n".join(commands) + "\n")
    subprocess.run(["debugfs", "-w", "-f", str(script), str(target)], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["e2fsck", "-fn", str(target)], check=True, capture_output=True)
    return changed


def squashed(path: Path, squash_block: int) -> int:
    """``path``'s size once compressed as the bundle's squashfs does (gzip per block)."""
    total = 0
    with path.open("rb") as stream:
        while chunk := stream.read(squash_block):
            total += min(len(zlib.compress(chunk, 9)), len(chunk))
    return total


def fetched(
    new: list[bytes], old: set[bytes], squash_block: int, ratio: float, index: int
) -> dict[str, float]:
    missing = [i for i, digest in enumerate(new) if digest not in old]
    touched = {i * BLOCK // squash_block for i in missing}
    data = len(touched) * squash_block * ratio
    return {"missing_blocks": len(missing), "missing_bytes": len(missing) * BLOCK,
            "squashfs_blocks": len(touched), "data_bytes": data, "index_bytes": index,
            "total_bytes": data + index}  # fmt: skip


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(prog="bench/update_size.py")
    out = ROOT / "var" / "image" / "out"
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()
    bundle = args.bundle or next(iter(sorted(out.glob("guichet-proche-*.raucb"))), None)
    if bundle is None or not bundle.exists():
        sys.stderr.write("no bundle: run ./run image first\n")
        return 2
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as tmp:
        work = Path(tmp)
        subprocess.run(["unsquashfs", "-no-progress", "-d", str(work / "n"), str(bundle),
                        "rootfs.ext4", *INDEXES], check=True, capture_output=True)  # fmt: skip
        root_n = work / "n" / "rootfs.ext4"
        listed = subprocess.run(["unsquashfs", "-lls", str(bundle)], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
        unpacked = sum(int(f[2]) for f in (line.split() for line in listed.splitlines())
                       if len(f) >= 6 and f[0].startswith("-"))  # fmt: skip
        ratio = bundle.stat().st_size / max(unpacked, 1)
        squash_block = squashfs_block_size(bundle)
        # Every index is read whole (zero blocks share a hash: it compresses).
        index = sum(squashed(work / "n" / name, squash_block) for name in INDEXES)
        hashes_n = block_hashes(root_n)
        old = set(hashes_n)
        scratch = work / "scratch"
        scratch.mkdir()
        files = project_release(root_n, work / "n1.ext4", scratch)
        results = {
            "unchanged": fetched(hashes_n, old, squash_block, ratio, index),
            f"project-only ({files} Python files)": fetched(
                block_hashes(work / "n1.ext4"), old, squash_block, ratio, index
            ),
        }
        shutil.rmtree(scratch, ignore_errors=True)
    full = bundle.stat().st_size
    print(
        f"bundle {bundle.name}: {mib(full)} (the full download, baseline); root "
        f"{mib(len(hashes_n) * BLOCK)}, squashfs blocks of {squash_block // 1024} KiB, "
        f"compressed to {ratio:.2f} of their size on average"
    )
    for name, r in results.items():
        print(
            f"{name:>32}: {r['missing_blocks']} blocks of 4 KiB new ({mib(r['missing_bytes'])}) "
            f"in {r['squashfs_blocks']} squashfs blocks (~{mib(r['data_bytes'])}) + index "
            f"{mib(r['index_bytes'])} = ~{mib(r['total_bytes'])}, "
            f"{100 * r['total_bytes'] / full:.2f} % of the bundle"
        )
    report = out / "update-check.json"
    if report.exists():
        update = json.loads(report.read_text()).get("update", {})
        if update.get("carried_mib") is not None:
            print(
                f"{'measured in qemu (update-check)':>32}: {update['carried_mib']} MiB of "
                f"{update['bundle_mib']} MiB streamed for its version-only N+1 "
                f"({100 * update['carried_mib'] / update['bundle_mib']:.2f} %)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
