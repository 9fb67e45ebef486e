"""Runs ``tests/netns`` inside a fresh loopback-only network namespace.

WebRTC between headless Chromium and aiortc was seen working only over 127.0.0.1 in such a
namespace (Chromium needs --allow-loopback-in-peer-connection, aioice must be told to offer
127.0.0.1). Everything those tests need (broker, fleet server, counter, browser) starts inside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900  # the whole inner suite; each of its tests has the suite's own timeout


@pytest.mark.timeout(TIMEOUT_S + 60)  # not the per-test default: this runs a suite
def test_calls_in_a_loopback_namespace() -> None:
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux's unshare is needed (apt-get install util-linux)"
    command = [
        unshare,
        "--net",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" -m pytest -p no:cacheprovider -q -rfE "$1"',
        sys.executable,
        str(ROOT / "tests" / "netns"),
    ]
    env = {**os.environ, "GUICHET_IN_NETNS": "1"}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    sys.stdout.write(result.stdout[-20_000:])
    sys.stderr.write(result.stderr[-5_000:])
    if result.returncode == 5:
        pytest.fail("no test collected in tests/netns")
    assert result.returncode == 0, "tests in the loopback namespace failed (output above)"
