"""System probes: the real machine's readings are sane, the parsers read the Pi's formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.hw.ports import SystemProbe, SystemSnapshot
from appliance.hw.ports.system import SimulatedSystemProbe
from appliance.hw.system import (
    PsutilSystemProbe,
    clock_synchronised_from_adjtimex,
    existing_parent,
    parse_ntp_synchronized,
    parse_throttled,
    read_cpu_temperature,
    read_throttled,
)


@pytest.fixture(params=["simulated", "psutil"])
def probe(request: pytest.FixtureRequest, tmp_path: Path) -> SystemProbe:
    if request.param == "psutil":
        return PsutilSystemProbe(tmp_path)
    return SimulatedSystemProbe(seed=7)


async def test_snapshot_is_plausible(probe: SystemProbe) -> None:
    assert isinstance(probe, SystemProbe)
    snap = await probe.snapshot()
    assert isinstance(snap, SystemSnapshot)
    assert snap.uptime_s > 0
    assert snap.cpu_temperature_c is None or -40 < snap.cpu_temperature_c < 130
    assert snap.throttled_raw is None or snap.throttled_raw >= 0
    assert len(snap.load) == 3
    assert all(v >= 0 for v in snap.load)
    assert 0 < snap.memory_used_pct <= 100
    assert 0 < snap.disk_used_pct <= 100
    assert snap.disk_free_bytes > 0
    names = [name for name, _, _ in snap.interfaces]
    assert "lo" not in names
    for _, up, addresses in snap.interfaces:
        assert isinstance(up, bool)
        assert all("%" not in a for a in addresses)


async def test_missing_data_dir_measures_its_nearest_parent(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "yet"
    assert existing_parent(missing) == tmp_path
    snap = await PsutilSystemProbe(missing).snapshot()
    assert snap.disk_free_bytes > 0


@pytest.mark.parametrize(
    ("text", "raw"),
    [("throttled=0x50005\n", 0x50005), ("50005\n", 0x50005), ("0\n", 0), ("garbage", None)],
)
def test_parse_throttled(text: str, raw: int | None) -> None:
    assert parse_throttled(text) == raw


def test_pi_firmware_files_are_read(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert read_cpu_temperature(zone) == pytest.approx(48.312)
    throttled = tmp_path / "get_throttled"
    throttled.write_text("50000\n")
    assert read_throttled(throttled) == 0x50000


async def test_simulated_probe_differs_per_seed_and_drifts_slowly() -> None:
    a, b = SimulatedSystemProbe(seed=1), SimulatedSystemProbe(seed=2)
    first, second = await a.snapshot(), await a.snapshot()
    assert first.cpu_temperature_c is not None
    assert second.cpu_temperature_c == pytest.approx(first.cpu_temperature_c, abs=0.5)
    assert (await b.snapshot()).interfaces != first.interfaces


async def test_the_clock_state_is_read(probe: SystemProbe) -> None:
    """Both probes say whether the clock is synchronised; here (a container or a CI host
    with a disciplined clock, or not) the real one agrees with adjtimex itself."""
    snap = await probe.snapshot()
    if isinstance(probe, PsutilSystemProbe):
        assert snap.clock_synchronised == clock_synchronised_from_adjtimex()
    else:
        assert snap.clock_synchronised is True


async def test_the_fake_clock_can_lose_its_synchronisation() -> None:
    probe = SimulatedSystemProbe(clock_synchronised=False)
    assert (await probe.snapshot()).clock_synchronised is False


@pytest.mark.parametrize(
    ("text", "synced"),
    [("yes\n", True), ("no\n", False), ("NTPSynchronized=yes", True), ("", None)],
)
def test_parse_ntp_synchronized(text: str, synced: bool | None) -> None:
    assert parse_ntp_synchronized(text) is synced
