"""The volume and brightness ports: the same assertions against the fakes and the real
adapters — ``amixer`` (a stand-in script on ``PATH`` that answers as alsa-utils does) and
the kernel's backlight class (a ``/sys/class/backlight`` tree in a temporary directory) —
and each real adapter refusing clearly where the hardware is absent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.errors import HardwareError
from appliance.hw.alsa_mixer import AmixerVolume
from appliance.hw.backlight import SysfsBacklight
from appliance.hw.ports import Backlight, SpeakerVolume
from appliance.hw.ports.levels import SimulatedBacklight, SimulatedVolume

FAKE_AMIXER = """#!/bin/sh
# Answers "amixer sset <control> <n>%" as alsa-utils does; no "Master" on card 9.
echo "$@" >> "$AMIXER_LOG"
if [ "$1" = "-c" ] && [ "$2" = "9" ]; then
  echo "amixer: Unable to find simple control 'Master',0" >&2
  exit 1
fi
level=${4%\\%}
echo "Simple mixer control 'Master',0"
echo "  Mono: Playback 52 [$level%] [-20.00dB] [on]"
"""


@pytest.fixture
def amixer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "amixer"
    script.write_text(FAKE_AMIXER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "amixer.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AMIXER_LOG", str(log))
    return log


def backlight_tree(root: Path, maximum: int = 255) -> Path:
    device = root / "rpi_backlight"
    device.mkdir(parents=True)
    (device / "max_brightness").write_text(f"{maximum}\n")
    (device / "brightness").write_text(f"{maximum}\n")
    return device


@pytest.fixture(params=["simulated", "amixer"])
def volume(request: pytest.FixtureRequest, tmp_path: Path) -> SpeakerVolume:
    if request.param == "simulated":
        return SimulatedVolume()
    request.getfixturevalue("amixer")
    return AmixerVolume()


@pytest.fixture(params=["simulated", "sysfs"])
def backlight(request: pytest.FixtureRequest, tmp_path: Path) -> Backlight:
    if request.param == "simulated":
        return SimulatedBacklight()
    backlight_tree(tmp_path / "backlight")
    return SysfsBacklight(tmp_path / "backlight")


@pytest.mark.parametrize("percent", [0, 35, 100])
async def test_the_volume_is_set_and_said(volume: SpeakerVolume, percent: int) -> None:
    assert isinstance(volume, SpeakerVolume)
    assert await volume.set_volume(percent) == percent


@pytest.mark.parametrize("percent", [0, 40, 100])
async def test_the_brightness_is_set_and_said(backlight: Backlight, percent: int) -> None:
    assert isinstance(backlight, Backlight)
    assert await backlight.set_brightness(percent) == percent


async def test_amixer_is_asked_for_the_control_in_percent(amixer: Path) -> None:
    await AmixerVolume(control="PCM").set_volume(60)
    assert amixer.read_text().split() == ["sset", "PCM", "60%"]


async def test_amixer_without_the_control_refuses(amixer: Path) -> None:
    with pytest.raises(HardwareError, match="pas de réglage « Master » sur la carte son"):
        await AmixerVolume(card="9").set_volume(50)


async def test_without_alsa_utils_the_volume_is_refused() -> None:
    with pytest.raises(HardwareError, match=r"amixer \(alsa-utils\) est absent"):
        await AmixerVolume(amixer="amixer-introuvable").set_volume(50)


async def test_the_backlight_writes_its_own_scale(tmp_path: Path) -> None:
    device = backlight_tree(tmp_path, maximum=31)
    assert await SysfsBacklight(tmp_path).set_brightness(50) == 52  # 16 of 31 steps
    assert (device / "brightness").read_text() == "16\n"


async def test_a_screen_without_backlight_refuses(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(HardwareError, match="ne se règle pas à distance"):
            await SysfsBacklight(root).set_brightness(50)


async def test_a_read_only_backlight_refuses(tmp_path: Path) -> None:
    device = backlight_tree(tmp_path)
    (device / "brightness").chmod(0o444)
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files")
    with pytest.raises(HardwareError, match="pas le droit d'écrire"):
        await SysfsBacklight(tmp_path).set_brightness(50)
