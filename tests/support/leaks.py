"""Privacy checks: where a test's marker strings (a citizen's words) were written."""

from __future__ import annotations

from pathlib import Path


def files_holding(root: Path, markers: tuple[str, ...]) -> list[str]:
    """Every file under ``root`` (symlinks aside) holding one of ``markers``, as
    ``"<path>: <marker>"``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {m}" for m in markers if m.encode() in data]
    return found
