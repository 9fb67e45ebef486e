"""Where a running demo says how to reach it, and what a demo that was killed left behind.

``guichet demo`` writes ``var/demo/state.json`` (0600: it holds the broker account the
demo's own commands use) once its broker is up, and removes it when it stops. The other
``guichet demo …`` commands, run from the same directory, read it: the broker to send
commands through, the counters there are, the control socket of the running demo.

A demo killed outright (SIGKILL, a closed terminal) cannot stop its broker and counters:
they go on, holding a port and reconnecting forever. The next demo in the same directory
finds them by the configuration files they were started with — absolute paths inside this
directory, so another directory's demo is never touched — and stops them first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, ValidationError

logger = logging.getLogger(__name__)

DEMO_DIR = Path("var/demo")
STATE_FILE = "state.json"
CONTROL_SOCKET = "control.sock"
LEFTOVER_STOP_TIMEOUT_S = 5.0  # SIGTERM, then SIGKILL after this


class DemoState(BaseModel):
    """What a running demo tells its own commands."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    pid: int
    mqtt_url: str
    protocol: str
    mqtt_username: str | None = None  # None: an outside broker, anonymous
    mqtt_password: str | None = None
    broker: str  # which broker runs, in French, as the demo announced it
    counters: tuple[str, ...]


def control_socket(demo_dir: Path) -> Path:
    return demo_dir / CONTROL_SOCKET


def write_state(demo_dir: Path, state: DemoState) -> None:
    path = demo_dir / STATE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(state.model_dump_json())


def read_state(demo_dir: Path) -> DemoState | None:
    """The running demo's state; None when there is none (or it cannot be read)."""
    try:
        return DemoState.model_validate_json((demo_dir / STATE_FILE).read_bytes())
    except (OSError, ValidationError):
        return None


def remove_state(demo_dir: Path) -> None:
    (demo_dir / STATE_FILE).unlink(missing_ok=True)


def stop_leftovers(config_files: Iterable[Path]) -> list[str]:
    """Stop the processes started with one of ``config_files`` (a killed demo's broker and
    counters); returns what was stopped, for the person who runs the demo."""
    markers = {str(path.resolve()) for path in config_files}
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if process.pid != os.getpid() and markers.intersection(cmdline):
            found.append(process)
    for process in found:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(found, timeout=LEFTOVER_STOP_TIMEOUT_S)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=LEFTOVER_STOP_TIMEOUT_S)
    stopped = [f"{process.pid}" for process in found]
    if stopped:
        logger.info("a previous demo's processes stopped", extra={"pids": stopped})
    return stopped
