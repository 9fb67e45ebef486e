"""The base stage: every layer's Debian packages installed by mmdebstrap, cached as a tarball.

This is the slow part (~20 min on 2 cores: package scripts run under qemu-user), so its
result is kept under a key made of everything that can change it: suite, architecture,
components, mirror, the sorted package list, the essential hooks, the dpkg filters and the
versions of mmdebstrap and qemu. Changing only the project does not change the key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from image.builder.model import Description
from image.builder.steps import Command, Step
from image.builder.workspace import Workspace

# Documentation is not needed on a counter; copyright files stay (licences).
DPKG_FILTERS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/fr*",
    "path-include=/usr/share/locale/locale.alias",
)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the base (part of the cache key)."""
    versions: dict[str, str] = {}
    for name, argv in {
        "mmdebstrap": ("mmdebstrap", "--version"),
        "qemu": ("qemu-aarch64-static", "--version"),
    }.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
            versions[name] = done.stdout.splitlines()[0] if done.stdout else "?"
        except OSError:
            versions[name] = "absent"
    return versions


def cache_key(description: Description, tools: dict[str, str]) -> str:
    image = description.image
    material = {
        "suite": image.suite,
        "architecture": image.architecture,
        "components": image.components,
        "mirror": image.mirror,
        "packages": description.packages(),
        "essential_hooks": [
            description.substitute(h, where=layer.name)
            for layer in description.layers
            for h in layer.essential_hooks
        ],
        "dpkg": list(DPKG_FILTERS),
        "tools": tools,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def binfmt_plan(*, mounted: bool) -> list[Step]:
    """Let the kernel run arm64 binaries through qemu-user (no systemd here to do it)."""
    steps: list[Step] = []
    if not mounted:
        steps.append(
            Command(
                "mount binfmt_misc",
                ("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)),
            )
        )
    steps += [
        Command("enable qemu-aarch64", ("update-binfmts", "--enable", "qemu-aarch64")),
        Command("check arm64 binaries run", ("arch-test", "arm64")),
    ]
    return steps


def base_plan(description: Description, workspace: Workspace, key: str) -> list[Step]:
    """mmdebstrap into ``cache/base-<key>.tar`` (written to a temporary name, then renamed)."""
    image = description.image
    target = workspace.base_tar(key)
    partial = target.with_suffix(".tar.partial")
    argv = [
        "mmdebstrap",
        f"--arch={image.architecture}",
        "--variant=minbase",
        f"--components={','.join(image.components)}",
        "--aptopt=APT::Install-Recommends false",
        f"--include={','.join(description.packages())}",
        *(f"--dpkgopt={f}" for f in DPKG_FILTERS),
    ]
    for layer in description.layers:
        for hook in layer.essential_hooks:
            argv.append(f"--essential-hook={description.substitute(hook, where=layer.name)}")
    argv += ["--format=tar", image.suite, str(partial), image.mirror]
    return [
        Command("mkdir cache", ("mkdir", "-p", str(workspace.cache))),
        Command(f"mmdebstrap {image.suite} {image.architecture} (base, cached)", tuple(argv)),
        Command("keep the base", ("mv", str(partial), str(target))),
    ]
