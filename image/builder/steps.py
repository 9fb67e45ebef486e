"""A build plan: an ordered list of steps, each a command to run or a Python action.

The stages (``base``, ``project``, ``assemble``) only *plan*; ``run_plan`` executes. Tests
read the plans without running anything. Commands run with no shell; a step that needs a
shell says so with ``sh -c``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class BuildError(Exception):
    """A build step failed; the message says which and how."""


@dataclass(frozen=True)
class Command:
    """An external command (argv, no shell)."""

    what: str
    argv: tuple[str, ...]
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """A Python step (writing files, moving directories)."""

    what: str
    run: Callable[[], None]


Step = Command | Action


def chroot(root: Path, script: str, *, what: str) -> Command:
    """Run ``script`` with ``/bin/sh -eu`` inside ``root`` (arm64 code under qemu-user binfmt),
    in a private mount namespace with /proc and /dev, so nothing leaks on the host."""
    inner = (
        'mount -t proc proc "$0/proc" && mount --bind /dev "$0/dev" && '
        'exec chroot "$0" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin '
        'LC_ALL=C.UTF-8 HOME=/root /bin/sh -euc "$1"'
    )
    return Command(what, ("unshare", "--mount", "--fork", "sh", "-c", inner, str(root), script))


def run_plan(steps: Sequence[Step], *, log_file: Path | None = None) -> None:
    """Run each step in order; stop at the first failure with its output's tail."""
    for step in steps:
        started = time.monotonic()
        logger.info("%s", step.what)
        if isinstance(step, Action):
            step.run()
        else:
            _run_command(step, log_file)
        logger.debug("%s: %.1f s", step.what, time.monotonic() - started)


def _run_command(step: Command, log_file: Path | None) -> None:
    env = {**os.environ, **step.env}
    out = log_file.open("ab") if log_file is not None else None
    try:
        if out is not None:
            out.write(f"\n### {step.what}\n$ {' '.join(step.argv)}\n".encode())
            out.flush()
        result = subprocess.run(  # noqa: S603 - argv built by the planner, never a shell string
            step.argv,
            input=step.stdin.encode() if step.stdin is not None else None,
            stdout=out if out is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    finally:
        if out is not None:
            out.close()
    if result.returncode != 0:
        tail = _tail(log_file) if log_file is not None else result.stdout.decode(errors="replace")
        raise BuildError(f"{step.what}: exit {result.returncode}\n{tail[-3000:]}")


def _tail(path: Path) -> str:
    with path.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4000))
        return f.read().decode(errors="replace")
