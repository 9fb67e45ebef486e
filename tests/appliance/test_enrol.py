"""The counter's hardware identity and its stored credentials (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance import enrol
from appliance.config import ApplianceConfig, parse_config
from appliance.errors import ConfigError

CPUINFO = "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\nModel\t: Pi 4\n"


def test_hardware_identity_prefers_the_pi_serial(tmp_path: Path) -> None:
    dt, cpu, mid = tmp_path / "serial-number", tmp_path / "cpuinfo", tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    assert enrol.hardware_identity([dt, cpu, mid]) == "machine-id:0123456789abcdef0123456789abcdef"
    cpu.write_text(CPUINFO)
    assert enrol.hardware_identity([dt, cpu, mid]) == "serial:10000000abcdef01"
    dt.write_bytes(b"10000000feedbeef\x00")
    assert enrol.hardware_identity([dt, cpu, mid]) == "serial:10000000feedbeef"
    cpu.write_text("Serial\t\t: 0000000000000000\n")  # a board without a serial
    assert enrol.hardware_identity([cpu, mid]).startswith("machine-id:")
    with pytest.raises(enrol.EnrolmentError):
        enrol.hardware_identity([tmp_path / "absent"])


def config(tmp_path: Path) -> ApplianceConfig:
    return ApplianceConfig.model_validate(
        {"device": {"id": "guichet-a", "site": "Site", "data_dir": tmp_path / "data"}}
    )


def test_credentials_are_stored_owner_only_and_override_the_toml(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    creds = enrol.StoredCredentials(
        device_id="guichet-a",
        broker_username="guichet-a",
        broker_password="p" * 43,
        call_token="gpc_" + "t" * 43,
    )
    assert enrol.load_credentials(cfg) is None
    path = enrol.save_credentials(cfg, creds)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert enrol.load_credentials(cfg) == creds
    applied = enrol.apply_credentials(cfg, creds)
    assert (applied.fleet.username, applied.fleet.password) == ("guichet-a", "p" * 43)
    assert applied.call.token == "gpc_" + "t" * 43
    assert "p" * 43 not in repr(creds)
    assert "t" * 43 not in str(creds)


async def test_no_token_and_nothing_stored_leaves_the_config_as_is(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert await enrol.ensure_enrolled(cfg) is cfg


def test_enrolment_settings_are_validated() -> None:
    base = '[device]\nid = "guichet-a"\nsite = "S"\n[fleet]\n'
    ok = parse_config(
        base + 'enrolment_url = "https://fleet.example.fr"\nenrolment_token = "gpe_abcdefgh"\n'
    )
    assert ok.fleet.enrolment_url == "https://fleet.example.fr"
    with pytest.raises(ConfigError, match="enrolment_url"):
        parse_config(base + 'enrolment_url = "ftp://x"\n')
