"""The screen adapter's behaviour: its thread, frame dropping, stopping, wiring and imports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance.config import parse_config
from appliance.errors import ConfigError, HardwareError
from appliance.hw.absent import AbsentScreen
from appliance.hw.ports import Screen, ScreenState
from appliance.hw.ports.screen import ShownState, SimulatedScreen
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.wiring import build_hardware
from tests.appliance.screen_helpers import close_to, dominant, screen, shot, solid_frame

__all__ = ["screen"]  # the fixture

ROOT = Path(__file__).resolve().parents[2]


def test_adapters_satisfy_the_port(screen: PygameScreen) -> None:
    for adapter in (screen, SimulatedScreen(), AbsentScreen()):
        assert isinstance(adapter, Screen)


def test_a_slow_screen_shows_the_newest_frame_and_drops_the_rest(
    screen: PygameScreen, tmp_path: Path
) -> None:
    frames = [solid_frame(1280, 720, (i, 255 - i, 100)) for i in range(0, 240, 4)]
    screen.show(ScreenState.IN_CALL)
    for frame in frames:  # far faster than 30 fps
        screen.show_frame(frame)
    pixels = shot(screen, tmp_path / "latest.png")
    assert close_to(pixels[360, 640], (236, 19, 100))
    assert screen.frames_received == len(frames)
    assert screen.frames_dropped >= len(frames) - 5
    assert screen.draws <= 8


def test_show_never_blocks_the_loop_and_comes_from_any_thread(
    screen: PygameScreen, tmp_path: Path
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(200):
            screen.show(ScreenState.WAITING, waited_s=1.0)
            screen.show_frame(solid_frame(64, 36, (1, 2, 3)))
        assert loop.time() - started < 0.5

    asyncio.run(main())
    other = threading.Thread(target=screen.show, args=(ScreenState.ENDED,))
    other.start()
    other.join()
    assert dominant(shot(screen, tmp_path / "ended.png")) == (18, 72, 40)


def test_close_stops_the_thread_and_later_calls_are_harmless(screen: PygameScreen) -> None:
    screen.show(ScreenState.IN_CALL)
    feeding = threading.Event()

    def feed() -> None:
        frame = solid_frame(320, 180, (9, 9, 9))
        while not feeding.is_set():
            screen.show_frame(frame)

    producer = threading.Thread(target=feed)
    producer.start()
    try:
        screen.close()
        assert not screen.running
    finally:
        feeding.set()
        producer.join()
    screen.close()  # twice is fine
    screen.show(ScreenState.IDLE)
    screen.show_frame(solid_frame(320, 180, (9, 9, 9)))
    with pytest.raises(HardwareError, match="stopped"):
        screen.screenshot(Path("/nonexistent/never.png"))


def test_a_display_that_cannot_open_is_a_clear_hardware_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    before = threading.active_count()
    with pytest.raises(HardwareError, match="screen"):
        PygameScreen(driver="no-such-driver")
    assert threading.active_count() == before


def test_simulated_screen_records_states_and_counts_frames_only_in_a_call() -> None:
    fake = SimulatedScreen()
    assert fake.state is None
    fake.show(ScreenState.IDLE, service="Caf")
    fake.show_frame(solid_frame(64, 36, (0, 0, 0)))  # not in a call: ignored
    fake.show(ScreenState.IN_CALL)
    fake.show_frame(solid_frame(64, 36, (0, 0, 0)))
    fake.show_frame(solid_frame(32, 18, (0, 0, 0)), self_view=True)
    fake.show(ScreenState.MISSED, next_opening="lundi à 9 h", phone="32 30")
    assert fake.history == [
        ShownState(ScreenState.IDLE, {"service": "Caf"}),
        ShownState(ScreenState.IN_CALL, {}),
        ShownState(ScreenState.MISSED, {"next_opening": "lundi à 9 h", "phone": "32 30"}),
    ]
    assert (fake.frames, fake.self_frames, fake.last_frame_size) == (1, 1, (64, 36))
    assert fake.info == {"next_opening": "lundi à 9 h", "phone": "32 30"}
    fake.close()
    fake.show(ScreenState.IDLE)
    assert len(fake.history) == 3


def _config(tmp_path: Path, hardware: str) -> str:
    return (
        f'[device]\nid = "guichet-test"\nsite = "Test"\ndata_dir = "{tmp_path}"\n'
        f'[hardware]\nsystem = "simulated"\n{hardware}'
    )


@pytest.mark.parametrize(
    ("setting", "adapter"),
    [
        ("", SimulatedScreen),
        ('screen = "simulated"', SimulatedScreen),
        ('screen = "none"', AbsentScreen),
    ],
)
async def test_wiring_picks_the_configured_screen(
    tmp_path: Path, setting: str, adapter: type
) -> None:
    hw = build_hardware(parse_config(_config(tmp_path, setting)), asyncio.get_running_loop())
    try:
        assert isinstance(hw.screen, adapter)
    finally:
        hw.close()


async def test_wiring_opens_pygame_and_closes_it_with_the_hardware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    cfg = parse_config(
        _config(tmp_path, 'screen = "pygame"\nscreen_driver = "dummy"\nscreen_size = [1920, 1080]')
    )
    assert cfg.hardware.screen_size == (1920, 1080)
    hw = build_hardware(cfg, asyncio.get_running_loop())
    assert isinstance(hw.screen, PygameScreen)
    path = tmp_path / "shot.png"
    await asyncio.to_thread(hw.screen.screenshot, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hw.close()
    assert not hw.screen.running


def test_config_defaults_and_bad_values() -> None:
    base = '[device]\nid = "guichet-test"\nsite = "Test"\n[hardware]\n'
    hw = parse_config(base).hardware
    assert (hw.screen, hw.screen_driver, hw.screen_size) == ("simulated", "kmsdrm", None)
    with pytest.raises(ConfigError, match=r"hardware\.screen_size"):
        parse_config(base + "screen_size = [10, 10]")
    with pytest.raises(ConfigError, match=r"hardware\.screen_driver"):
        parse_config(base + 'screen_driver = "directfb"')


def test_appliance_imports_and_simulates_a_screen_without_pygame_or_av() -> None:
    code = """
import asyncio, sys
sys.modules["pygame"] = None  # import pygame now raises ImportError
sys.modules["av"] = None
from appliance.config import parse_config
from appliance.errors import HardwareError
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.wiring import build_hardware
text = '[device]\\nid = "guichet-x"\\nsite = "X"\\n[hardware]\\nsystem = "simulated"\\n'
cfg = parse_config(text)
async def main():
    build_hardware(cfg, asyncio.get_running_loop()).close()
asyncio.run(main())
try:
    PygameScreen(driver="dummy")
except HardwareError as exc:
    assert "pygame" in str(exc), exc
else:
    raise SystemExit("PygameScreen opened without pygame")
"""
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_the_screenshot_tool_writes_every_state(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-W", "error", "tools/screen_screenshots.py", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in tmp_path.glob("screen-*.png"))
    states = [f"screen-{s.value.replace('_', '-')}.png" for s in ScreenState]
    variants = [
        "waiting-queue",
        "in-call-headset",
        "in-call-text",
        "choice-more-time",
        "survey-more-time",
    ]
    assert names == sorted(states + [f"screen-{name}.png" for name in variants])
