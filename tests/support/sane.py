"""The SANE ``test`` backend through a private SANE_CONFIG_DIR.

libsane reads SANE_CONFIG_DIR once, at the first ``sane_init()`` of the process, and keeps
it (measured: set after an init and an exit, it is ignored). So the variable must be set
before anything in the test process initialises SANE: every test that touches the real
SANE adapter requests the ``sane_test_backend`` fixture, which does it first.
The private directory enables only the ``test`` backend, which also skips the network
backend's ~3.4 s discovery.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SYSTEM_TEST_CONF = Path("/etc/sane.d/test.conf")
TEST_DEVICE = "test:0"  # the test backend's first virtual scanner


_config_dir: Path | None = None  # one per process: libsane would ignore a second one


def sane_test_config(base: Path) -> Path:
    """Create (once per process) the private config dir and point SANE_CONFIG_DIR at it."""
    global _config_dir
    if _config_dir is None:
        config_dir = base / "sane.d"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "dll.conf").write_text("test\n")
        (config_dir / "test.conf").write_text(SYSTEM_TEST_CONF.read_text())
        _config_dir = config_dir
    os.environ["SANE_CONFIG_DIR"] = str(_config_dir)
    return _config_dir


@pytest.fixture(scope="session", name="sane_test_backend")
def sane_test_backend_fixture(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Point libsane at a config with only the test backend; returns a device name.

    Import ``sane_test_backend_fixture``; request it as ``sane_test_backend``.
    """
    try:
        import sane  # noqa: F401  # only checking it is there
    except ImportError:
        pytest.fail("python-sane is not installed (./run test installs it)")
    if not SYSTEM_TEST_CONF.exists():
        pytest.fail("sane-backends' test backend is not installed (apt-get install sane-utils)")
    from appliance.hw.sane import scanner as sane_scanner

    if sane_scanner.sane_initialised() and _config_dir is None:
        pytest.fail("SANE was initialised earlier in this process with the system config")
    sane_test_config(tmp_path_factory.getbasetemp())
    return TEST_DEVICE


# The test backend keeps option values from one open to the next (per device, per process):
# a test that makes it fail must set it back, or later scans fail too.
NO_FAULT = {"enable_test_options": True, "read_return_value": "Default"}


def fault(status: str) -> dict[str, object]:
    """Options making the test backend's next reads fail with ``status`` (SANE_STATUS_…)."""
    return {"enable_test_options": True, "read_return_value": status}
