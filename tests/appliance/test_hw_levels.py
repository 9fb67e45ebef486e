"""The volume and brightness ports: the same assertions against the fakes and the real
adapters — ``amixer`` (a stand-in script on ``PATH`` that answers as alsa-utils does) and
the kernel's backlight class (a ``/sys/class/backlight`` tree in a temporary directory) —
and each real adapter refusing clearly where the hardware is absent."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
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


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which every user may run
REPO = Path(__file__).resolve().parents[2]
NOBODYS_MODULES = (  # what appliance.hw.backlight imports: the standard library only
    "appliance/__init__.py",
    "appliance/errors.py",
    "appliance/hw/__init__.py",
    "appliance/hw/backlight.py",
    "guichet/__init__.py",
    "guichet/errors.py",
)
NOBODYS_SCRIPT = """
import asyncio, sys
from pathlib import Path
from appliance.errors import HardwareError
from appliance.hw.backlight import SysfsBacklight
try:
    asyncio.run(SysfsBacklight(Path(sys.argv[1])).set_brightness(50))
except HardwareError as exc:
    print(exc)
"""


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
    """The counter's service is no root: a brightness file it may not write is refused
    with the reason."""
    device = backlight_tree(tmp_path)
    (device / "brightness").chmod(0o444)
    if os.geteuid() != 0:
        with pytest.raises(HardwareError, match="pas le droit d'écrire"):
            await SysfsBacklight(tmp_path).set_brightness(50)
        return
    # Root writes read-only files: as root (CI), the adapter runs in a child process that
    # dropped to ``nobody``, on the system's Python, from a copy of the few standard-library
    # modules it needs (this checkout and this venv may lie where ``nobody`` cannot read).
    work = Path(tempfile.mkdtemp(prefix="backlight-"))
    try:
        work.chmod(0o755)
        for module in NOBODYS_MODULES:
            copy = work / "code" / module
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / module, copy)
        tree = work / "sys"
        shutil.copytree(tmp_path, tree)
        for path in [work, *work.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (tree / device.name / "brightness").chmod(0o444)
        nobody = pwd.getpwnam("nobody")
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", NOBODYS_SCRIPT, str(tree)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=work,
            env={"PYTHONPATH": str(work / "code"), "PYTHONDONTWRITEBYTECODE": "1"},
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
        )
        assert "pas le droit d'écrire" in done.stdout, done.stdout + done.stderr
        assert (tree / device.name / "brightness").read_text() == "255\n"  # untouched
    finally:
        shutil.rmtree(work)
