"""The call's private directory: the only place a document may touch a disk.

A document to print has to be a file for CUPS (``printFile``). It goes to a directory of
the call, mode 0700, on a RAM file system when there is one (``$XDG_RUNTIME_DIR``, else
``/dev/shm``), and the directory is wiped when the call ends and when the counter starts
(a crash mid-call leaves nothing behind for long). File names are opaque (``job-1.pdf``);
the agent's file name is never used.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT_NAME = "guichet-documents"
RAM_DIRS = ("/dev/shm",)  # noqa: S108 - tmpfs, then a 0700 dir of ours; XDG first


def default_root() -> Path:
    """``$XDG_RUNTIME_DIR/guichet-documents``, else ``/dev/shm/guichet-documents-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / ROOT_NAME
    for candidate in RAM_DIRS:
        if Path(candidate).is_dir():
            return Path(candidate) / f"{ROOT_NAME}-{os.getuid()}"
    return Path("/tmp") / f"{ROOT_NAME}-{os.getuid()}"  # noqa: S108 - 0700, wiped; last resort


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid != os.getuid():
        raise PermissionError("the documents directory is not ours")
    path.chmod(0o700)
    return path


def wipe_all(root: Path) -> int:
    """Remove every call directory under ``root`` (start-up); returns how many went."""
    if not root.is_dir():
        return 0
    removed = 0
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.warning("documents left by an earlier run wiped (%d)", removed)
    return removed


class CallDirectory:
    """One call's private directory; ``wipe()`` removes it and everything in it."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._path: Path | None = None
        self._count = 0

    @property
    def path(self) -> Path | None:
        return self._path

    def new_file(self, data: bytes, suffix: str = ".pdf") -> Path:
        """Blocking: write ``data`` to a fresh 0600 file in the call's directory."""
        if self._path is None:
            _private_dir(self._root)
            self._path = _private_dir(self._root / uuid.uuid4().hex)
        self._count += 1
        path = self._path / f"job-{self._count}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def wipe(self) -> None:
        """Blocking: remove the call's directory; idempotent."""
        path, self._path = self._path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
