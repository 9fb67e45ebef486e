"""Stopping a test's helper process (broker, relay, CUPS scheduler): ask, then insist."""

from __future__ import annotations

import subprocess
from typing import Any

STOP_S = 5.0  # a helper that has not exited this long after SIGTERM gets SIGKILL


def stop_process(process: subprocess.Popen[Any], timeout_s: float = STOP_S) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
