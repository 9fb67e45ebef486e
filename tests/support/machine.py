"""The machine's own configuration, watched across a test session.

Tests start private services (Mosquitto, cupsd, SANE config) and never edit the machine's:
the suite takes a snapshot of the files below when it starts and fails the run when any of
them differs at the end (``tests/conftest.py``), naming what changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

WATCHED_FILES = (
    Path("/etc/cups/cupsd.conf"),
    Path("/etc/cups/cups-files.conf"),
    Path("/etc/cups/cups-pdf.conf"),
    Path("/etc/cups/printers.conf"),
    Path("/etc/cups/classes.conf"),
    Path("/etc/cups/lpoptions"),
    Path("/etc/sane.d/dll.conf"),
    Path("/etc/sane.d/test.conf"),
    Path("/etc/mosquitto/mosquitto.conf"),
    Path("/etc/turnserver.conf"),
    Path("/var/lib/turn/turndb"),  # coturn's default user database (tests give their own)
)
WATCHED_DIRS = (
    Path("/usr/lib/cups/backend"),
    Path("/etc/mosquitto/conf.d"),
    Path("/etc/udev/rules.d"),
    Path(os.path.expanduser("~root")) / "PDF",  # cups-pdf's output for root's jobs
)

Snapshot = dict[str, str]


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"


def _dir_listing(path: Path) -> str:
    try:
        return "\n".join(sorted(p.name for p in path.iterdir()))
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"


def snapshot(
    files: tuple[Path, ...] = WATCHED_FILES, dirs: tuple[Path, ...] = WATCHED_DIRS
) -> Snapshot:
    taken = {str(p): _file_digest(p) for p in files}
    taken.update({f"{p}/": _dir_listing(p) for p in dirs})
    return taken


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """The watched paths whose content (or listing) differs."""
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )
