"""Extra choice buttons, when wired: on the service choice the N-th calls the N-th service, in
the questionnaire it chooses the N-th answer. Real gpiozero buttons on its mock pin factory
feed the machine; then the whole counter built from its TOML with ``choice_pins``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygame
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.app import Appliance
from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.phases import MINUTE
from appliance.config import parse_config
from appliance.errors import ConfigError
from appliance.hw.gpio.devices import GpiozeroButton
from appliance.hw.ports import ScreenState
from appliance.hw.ports.screen import SimulatedScreen
from appliance.hw.screen_pygame.draw import Fonts
from appliance.hw.screen_pygame.renderer import Renderer
from guichet import contract
from guichet import signalling as sig
from guichet.questionnaire import default_questionnaire
from guichet.schedule import AccessMode, CounterSchedule, Opening, ServiceInfo
from tests.appliance.call_support import FakeFleetServer
from tests.appliance.mqtt_observer import Observer
from tests.appliance.screen_helpers import SIZE
from tests.appliance.test_app import DEVICE, config_text, observer, running
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import WallClock, at, schedule
from tests.support.mosquitto import Broker

__all__ = ["observer"]  # the fixture
CHOICE_PINS = (5, 6, 13)
EVENT_TIMEOUT_S = 5.0
TOKEN = "counter-token-0123456789"


@dataclass
class Rig:
    machine: CallMachine
    fx: Effects
    wall: WallClock
    factory: MockFactory
    changed: asyncio.Event

    async def push(self, option: int) -> None:
        """A finger on extra button ``option`` (from 0), through its mock pin."""
        self.changed.clear()
        pin = self.factory.pin(CHOICE_PINS[option])
        pin.drive_low()
        pin.drive_high()
        await asyncio.wait_for(self.changed.wait(), EVENT_TIMEOUT_S)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A machine whose three choice buttons are real gpiozero buttons on mock pins."""
    loop = asyncio.get_running_loop()
    factory = MockFactory()
    fx, wall, changed = Effects(), WallClock(at(1, 10, 15)), asyncio.Event()  # Caf and MSA open
    machine = CallMachine(
        fx,
        CallTimings(long_press_s=2.0),
        clock=Clock(),
        new_id=lambda: CALL_ID,
        wall_clock=wall,
        choice_buttons=len(CHOICE_PINS),
    )
    machine.link_connected(WELCOME)
    machine.configure(schedule(), default_questionnaire())
    buttons = [
        GpiozeroButton(pin, loop=loop, pin_factory=factory, bounce_s=None) for pin in CHOICE_PINS
    ]

    def pressed(option: int) -> None:
        machine.choice_pressed(option)
        changed.set()

    for option, button in enumerate(buttons):
        button.when_pressed(lambda option=option: pressed(option))
    yield Rig(machine, fx, wall, factory, changed)
    for button in buttons:
        button.close()


def answered_call(m: CallMachine) -> None:
    m.pressed()
    m.released(2.5)  # the highlighted service: Caf
    m.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    m.media_connected()
    m.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="hangup_agent"))


async def test_the_second_button_calls_the_second_service(rig: Rig) -> None:
    assert rig.fx.screens[-1] == (
        ScreenState.CHOICE,
        {"choices": ["Caf", "MSA"], "selected": 0, "numbered": 3},
    )
    await rig.push(1)
    assert rig.fx.sent == [sig.CallRequest(call_id=CALL_ID, service="msa")]
    assert rig.machine.phase is Phase.REQUESTING
    assert rig.fx.screens[-1][1]["service"] == "MSA"


async def test_a_button_without_a_service_and_one_outside_a_choice_do_nothing(rig: Rig) -> None:
    await rig.push(2)  # two services listed, the third button has none
    assert rig.fx.sent == []
    assert rig.machine.phase is Phase.IDLE
    rig.wall.now = at(1, 9, 30)  # only Caf open: no list, the call button calls
    rig.machine.timer_fired(MINUTE)
    assert rig.fx.screens[-1] == (ScreenState.IDLE, {"service": "Caf"})
    await rig.push(0)
    assert rig.fx.sent == []


async def test_buttons_answer_the_questionnaire_directly(rig: Rig) -> None:
    answered_call(rig.machine)
    assert rig.machine.phase is Phase.SURVEY
    info = rig.fx.screens[-1][1]
    assert (info["step"], info["numbered"]) == (1, 3)
    await rig.push(2)  # "Non"
    info = rig.fx.screens[-1][1]
    assert (info["step"], info["faces"], info["numbered"]) == (2, True, 3)
    await rig.push(1)  # the second face: "Mécontent"
    assert rig.fx.screens[-1][1]["step"] == 3
    rig.machine.released(0.2)  # the call button still works alongside: short press moves
    rig.machine.released(2.5)  # long press chooses the second travel answer
    assert rig.machine.phase is Phase.ENDED
    [answer] = rig.fx.surveys
    assert answer.answers == {"dealt_with": "no", "satisfaction": "2", "travel": "lt10"}
    assert sum(isinstance(m, sig.CallRequest) for m in rig.fx.sent) == 1  # no new call


async def test_after_a_call_a_button_brings_the_list_back_without_calling(rig: Rig) -> None:
    rig.machine.configure(schedule(), None)
    answered_call(rig.machine)
    assert rig.machine.phase is Phase.ENDED
    await rig.push(0)
    assert rig.machine.phase is Phase.IDLE
    assert rig.fx.screens[-1][0] is ScreenState.CHOICE
    assert sum(isinstance(m, sig.CallRequest) for m in rig.fx.sent) == 1


def test_without_choice_buttons_nothing_is_numbered_and_presses_are_ignored() -> None:
    fx = Effects()
    machine = CallMachine(
        fx, clock=Clock(), new_id=lambda: CALL_ID, wall_clock=WallClock(at(1, 10, 15))
    )
    machine.link_connected(WELCOME)
    machine.configure(schedule(), None)
    assert "numbered" not in fx.screens[-1][1]
    machine.choice_pressed(0)
    assert fx.sent == []


# --- the screen --------------------------------------------------------------------------------


def drawn_texts(state: ScreenState, info: dict[str, object]) -> int:
    renderer = Renderer(pygame.Surface(SIZE), Fonts())
    renderer.show(state, info, at=0.0)  # type: ignore[arg-type]
    renderer.draw(now=0.0)
    return len(renderer.text_rects)


@pytest.mark.parametrize(
    ("state", "info", "numbered"),
    [
        (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 0}, 2),
        (
            ScreenState.SURVEY,
            {"question": "Q ?", "choices": ["Oui", "Non"], "selected": 0, "step": 1, "steps": 1},
            2,
        ),
        (
            ScreenState.SURVEY,
            {"question": "Q ?", "choices": list("abcde"), "selected": 0, "faces": True},
            3,
        ),
    ],
)
def test_numbered_options_carry_their_buttons_number(
    state: ScreenState, info: dict[str, object], numbered: int
) -> None:
    pygame.font.init()
    plain = drawn_texts(state, info)
    # one number per button wired (not beyond), and the line saying what they do
    assert drawn_texts(state, info | {"numbered": numbered}) == plain + numbered + 1


# --- configuration and the whole counter --------------------------------------------------------


def hardware(extra: str) -> str:
    return f'[device]\nid = "guichet-test"\nsite = "Test"\n[hardware]\n{extra}'


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ("[5, 5]", "listed twice"),
        ("[5, 17]", "GPIO17 is already the button's"),
        ("[27]", "GPIO27 is already the light's"),
        ("[1, 2, 3, 4, 5, 6, 7]", "at most 6"),
        ("[28]", "less than or equal to 27"),
    ],
)
def test_bad_choice_pins_are_refused_naming_the_key(pins: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"hardware\.choice_pins") as caught:
        parse_config(hardware(f"choice_pins = {pins}\n"))
    assert message in str(caught.value)


def test_choice_pins_default_to_none() -> None:
    assert parse_config(hardware("")).hardware.choice_pins == ()
    assert parse_config(hardware("choice_pins = [5, 6]\n")).hardware.choice_pins == (5, 6)


def two_services_open(version: int) -> bytes:
    now = datetime.now(UTC)
    openings = [
        Opening(
            service=code,
            mode=AccessMode.SLOT,
            start=now - timedelta(hours=1),
            end=now + timedelta(hours=1),
        )
        for code in ("caf", "msa")
    ]
    schedule = CounterSchedule(
        generated_at=now,
        until=now + timedelta(days=14),
        services=[ServiceInfo(code="caf", label="Caf"), ServiceInfo(code="msa", label="MSA")],
        openings=openings,
    )
    return contract.encode(contract.DeviceConfig(version=version, issued_at=now, schedule=schedule))


async def test_the_counter_wires_its_choice_buttons(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    text = config_text(tmp_path / "data", broker.url).replace(
        "[hardware]\n",
        '[hardware]\nbutton = "gpiozero"\nlight = "gpiozero"\ngpio_pin_factory = "mock"\n'
        "choice_pins = [5, 6]\n",
    ) + (f'\n[call]\nserver_url = "{server.url}"\ntoken = "{TOKEN}"\n')
    assert "choice_pins" in text
    try:
        appliance = Appliance(parse_config(text))
        async with running(appliance):
            screen = appliance.hardware.screen
            assert isinstance(screen, SimulatedScreen)
            assert all(isinstance(b, GpiozeroButton) for b in appliance.hardware.choice_buttons)
            observer.publish(
                contract.topic(DEVICE, contract.Kind.CONFIG), two_services_open(1), retain=True
            )
            async with asyncio.timeout(10):
                while screen.state is not ScreenState.CHOICE:
                    await asyncio.sleep(0.02)
            assert screen.info == {"choices": ["Caf", "MSA"], "selected": 0, "numbered": 2}
            factory = appliance.hardware.pin_factory
            assert isinstance(factory, MockFactory)
            factory.pin(6).drive_low()  # the second extra button
            request = await server.expect(sig.CallRequest)
            assert request.service == "msa"
            factory.pin(6).drive_high()
    finally:
        await server.stop()
