"""``guichet demo press``: a command over the real broker presses a simulated counter's
button, short or long; a counter with a real (gpiozero) button has no such command. The
counter's answer says where the press landed (issue 17: after a call, the questionnaire)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from appliance.app import Appliance
from appliance.call.machine import CallMachine, CallTimings
from appliance.call.summary import summary
from appliance.fleet.commands import CommandFailed, simulated_press, simulated_skip
from appliance.hw.ports.controls import SimulatedButton
from guichet import contract
from guichet.questionnaire import default_questionnaire
from guichet_cli.demo_press import LONG_PRESS_S, SHORT_PRESS_S, press
from tests.appliance.test_app import DEVICE, make_config, running
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import SHORT, WallClock, answered_call, at, schedule
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


def press_command(held_s: float) -> contract.Command:
    return contract.Command(
        request_id=uuid.uuid4(), at=contract.utcnow(), name="press_button", args={"held_s": held_s}
    )


async def test_the_counter_answers_with_where_the_press_landed() -> None:
    """After an answered call the press is the questionnaire's: the ack names the question
    and the answer the press moved to, read once the release has reached the machine."""
    fx = Effects()
    machine = CallMachine(
        fx, CallTimings(), clock=Clock(), new_id=lambda: CALL_ID, wall_clock=WallClock(at(1, 9))
    )
    machine.link_connected(WELCOME)
    machine.configure(schedule(), default_questionnaire())
    answered_call(machine)
    button = SimulatedButton(loop=asyncio.get_running_loop())
    button.when_pressed(machine.pressed)
    button.when_released(machine.released)
    press_button = simulated_press(button, lambda: summary(machine))
    detail = await press_button(press_command(SHORT))
    assert detail.startswith(f"bouton appuyé {SHORT} s ; guichet : questionnaire après l'appel")
    assert "réponse en surbrillance « En partie »" in detail  # moved from « Oui »

    skip = simulated_skip(machine.skip_survey, lambda: summary(machine))
    assert await skip(press_command(0)) == "questionnaire passé ; guichet : écran de fin d'appel"
    with pytest.raises(CommandFailed, match="pas de questionnaire en cours"):
        await skip(press_command(0))
