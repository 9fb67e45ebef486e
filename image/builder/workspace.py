"""Where a build keeps its files (all under ``var/image``, ignored by git)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """``cache/`` survives builds (base root filesystems, downloaded wheels); ``work/`` is
    remade by every build; ``out/`` holds the results."""

    top: Path

    @property
    def cache(self) -> Path:
        return self.top / "cache"

    @property
    def work(self) -> Path:
        return self.top / "work"

    @property
    def rootfs(self) -> Path:
        return self.work / "rootfs"

    @property
    def bootfs(self) -> Path:
        return self.work / "boot"

    @property
    def firmwarefs(self) -> Path:
        """The first FAT's tree (autoboot.txt, guichet.toml); ``bootfs`` is a slot's."""
        return self.work / "firmware"

    @property
    def datafs(self) -> Path:
        return self.work / "data"

    @property
    def parts(self) -> Path:
        return self.work / "parts"

    @property
    def wheels(self) -> Path:
        return self.work / "wheels"

    @property
    def wheel_cache(self) -> Path:
        return self.cache / "wheels"

    @property
    def out(self) -> Path:
        return self.top / "out"

    @property
    def log(self) -> Path:
        return self.top / "build.log"

    def base_tar(self, key: str) -> Path:
        return self.cache / f"base-{key[:16]}.tar"
