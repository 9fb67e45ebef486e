"""``guichet demo press``: a command over the real broker presses a simulated counter's
button, short or long; a counter with a real (gpiozero) button has no such command. The
counter's answer says where the press landed (issue 17: after a call, the questionnaire)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.app import Appliance
from appliance.call.machine import CallMachine, CallTimings
from appliance.call.summary import summary
from appliance.fleet.commands import CommandFailed, simulated_press, simulated_skip
from appliance.hw.ports.controls import SimulatedButton
from guichet import contract
from guichet.questionnaire import default_questionnaire
from guichet_cli.demo_control import ControlReply, ControlRequest, serve_control
from guichet_cli.demo_press import ACK_TIMEOUT_S, LONG_PRESS_S, SHORT_PRESS_S, STATUS_WAIT_S, press
from guichet_cli.demo_state import DemoState, control_socket, write_state
from tests.appliance.test_app import DEVICE, make_config, running
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import SHORT, WallClock, answered_call, at, schedule
from tests.support.mosquitto import Broker


@pytest.fixture
async def demo_dir(tmp_path: Path, broker: Broker) -> AsyncIterator[Path]:
    """What a running demo leaves for its commands: its state file and its control socket,
    which says the counter's process runs."""
    directory = tmp_path / "demo"
    directory.mkdir()
    state = DemoState(
        pid=1, mqtt_url=broker.url, protocol="5", broker="Mosquitto", counters=(DEVICE,)
    )
    write_state(directory, state)

    async def running_process(request: ControlRequest) -> ControlReply:
        return ControlReply(ok=True, running=request.counter == DEVICE)

    control = await serve_control(control_socket(directory), running_process)
    yield directory
    control.close()
    await control.wait_closed()


@pytest.mark.parametrize(("long", "held_s"), [(False, SHORT_PRESS_S), (True, LONG_PRESS_S)])
async def test_press_reaches_the_simulated_button(
    tmp_path: Path, broker: Broker, demo_dir: Path, long: bool, held_s: float
) -> None:
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


async def test_an_offline_counter_is_said_offline_at_once(
    tmp_path: Path, broker: Broker, demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: pressing an offline counter waited 15 s for an ack that could not come. Its
    retained status says "offline" (here its link is down, its process up): said at once."""
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
    started = time.monotonic()
    assert await asyncio.to_thread(press, demo_dir, DEVICE) == 1
    assert time.monotonic() - started < STATUS_WAIT_S
    assert capsys.readouterr().err == f"Le guichet {DEVICE} est hors ligne.\n"


async def test_a_counter_never_connected_is_said_so_without_waiting_for_an_ack(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert await asyncio.to_thread(press, demo_dir, DEVICE) == 1
    assert time.monotonic() - started < ACK_TIMEOUT_S / 2
    assert "ne s'est pas encore connecté" in capsys.readouterr().err


async def test_an_unknown_counter_is_refused_at_once(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(press, demo_dir, "guichet-inconnu") == 2
    assert capsys.readouterr().err.startswith("Guichet inconnu : guichet-inconnu")


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
