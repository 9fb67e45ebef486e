"""``guichet demo press``: a command over the real broker presses a simulated counter's
button, short or long; a counter with a real (gpiozero) button has no such command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from appliance.app import Appliance
from guichet_cli.demo_press import LONG_PRESS_S, SHORT_PRESS_S, press
from tests.appliance.test_app import DEVICE, make_config, running
from tests.support.mosquitto import Broker


def write_state(tmp_path: Path, broker: Broker) -> Path:
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    state = {"mqtt_url": broker.url, "protocol": "5"}
    (demo_dir / "state.json").write_text(json.dumps(state))
    return demo_dir


@pytest.mark.parametrize(("long", "held_s"), [(False, SHORT_PRESS_S), (True, LONG_PRESS_S)])
async def test_press_reaches_the_simulated_button(
    tmp_path: Path, broker: Broker, long: bool, held_s: float
) -> None:
    demo_dir = write_state(tmp_path, broker)
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        pressed = asyncio.Event()
        released: list[float] = []
        appliance.hardware.button.when_pressed(pressed.set)
        appliance.hardware.button.when_released(released.append)
        code = await asyncio.to_thread(press, demo_dir, DEVICE, long=long)
        assert code == 0
        assert pressed.is_set()
        assert released == [pytest.approx(held_s)]


def test_press_without_a_running_demo_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert press(tmp_path, DEVICE) == 2
    assert "ne tourne pas" in capsys.readouterr().err
