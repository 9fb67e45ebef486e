"""Benchmarks that need a network namespace of their own re-execute themselves in one
(``unshare --net``, loopback up; root needed), as ``tests/e2e/test_netns.py`` runs
``tests/netns``. ``GUICHET_IN_NETNS=1`` tells the second run it is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def inside() -> bool:
    return os.environ.get("GUICHET_IN_NETNS") == "1"


def run_again_inside() -> int:
    """This very command again, in a fresh network namespace; its exit status."""
    command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    command += [sys.executable, *sys.argv]
    env = {**os.environ, "GUICHET_IN_NETNS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, env=env, check=False).returncode
