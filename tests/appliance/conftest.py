"""Fixtures of the appliance's tests: a private D-Bus session bus, and logind's stand-in on
it (``logind_stand_in.py``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.appliance.logind_stand_in import LogindStandIn


@pytest.fixture
def private_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    monkeypatch.setenv("DBUS_STARTER_BUS_TYPE", "session")
    try:
        yield address
    finally:
        daemon.terminate()
        daemon.wait()
        daemon.stdout.close()


@pytest.fixture
def logind(private_bus: str) -> Iterator[LogindStandIn]:
    stand_in = LogindStandIn(private_bus)
    try:
        yield stand_in
    finally:
        stand_in.close()
