"""The counter's TOML config: valid files load; every bad file gives one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config, parse_config
from appliance.errors import ConfigError
from appliance.process import check_config

VALID = """
[device]
id = "bandiat-01"
site = "Bandiat Tardoire Avenir"
data_dir = "/tmp/guichet"

[fleet]
mqtt_url = "mqtts://fleet.example.org:8883"
protocol = "3.1.1"
username = "bandiat-01"
password = "not-a-real-secret"
telemetry_interval_s = 60

[fleet.tls]
ca_file = "/etc/guichet/ca.pem"

[hardware]
button = "gpiozero"
gpio_pin_factory = "mock"
printer = "cups"
printer_queue = "Accueil"
"""


HEAD = '[device]\nid = "guichet-test"\nsite = "x"\n'


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "counter.toml"
    path.write_text(VALID, encoding="utf-8")
    config = load_config(path)
    assert config.device.id == "bandiat-01"
    assert config.fleet.uses_tls
    assert (config.fleet.host, config.fleet.port) == ("fleet.example.org", 8883)
    assert config.fleet.protocol == "3.1.1"
    assert config.fleet.tls.ca_file == Path("/etc/guichet/ca.pem")
    assert config.hardware.printer == "cups"
    assert config.hardware.camera == "simulated"  # defaults fill the rest


def test_defaults_need_only_the_device() -> None:
    config = parse_config('[device]\nid = "guichet-test"\nsite = "Essai"\n')
    assert config.fleet.mqtt_url == "mqtt://127.0.0.1:1883"
    assert config.fleet.protocol == "5"
    assert config.fleet.telemetry_interval_s == 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[device]\nid = "guichet-test"\nsite = "x"\ncolour = "blue"\n', "'device.colour'"),
        (HEAD + '[fleet]\nkeepalive = 5\n', "'fleet.keepalive'"),
        ('[device]\nid = "guichet-test"\nsite = "x"\n[camera]\n', "'camera'"),
        ('[device]\nid = "guichet-test"\nsite = "x"\n[fleet]\nkeepalive_s = "soon"\n',
         "'fleet.keepalive_s'"),
        (HEAD + '[fleet]\nprotocol = "4"\n', "'fleet.protocol'"),
        ('[device]\nid = "guichet-test"\nsite = "x"\n[fleet]\nmqtt_url = "http://h"\n',
         "'fleet.mqtt_url'"),
        ('[device]\nid = "Not Valid!"\nsite = "x"\n', "'device.id'"),
        ('[device]\nsite = "x"\n', "'device.id'"),
        ("", "'device'"),
    ],
)  # fmt: skip
def test_a_bad_key_or_value_is_named(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="counter.toml")
    message = str(caught.value)
    assert message.startswith("counter.toml: key ")
    assert expected in message
    assert "\n" not in message


def test_broken_toml_is_one_clear_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[device\nid = "x"\n', source="counter.toml")
    assert str(caught.value).startswith("counter.toml: not valid TOML:")
    assert "\n" not in str(caught.value)


def test_missing_file_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(VALID, encoding="utf-8")
    bad.write_text('[device]\nid = "guichet-test"\nsite = "x"\nmqtt = 1\n', encoding="utf-8")
    assert check_config(good) == 0
    assert "ok" in capsys.readouterr().out
    assert check_config(bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'device.mqtt'" in err
