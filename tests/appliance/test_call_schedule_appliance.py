"""The whole counter follows the schedule of its retained ``config`` (real Mosquitto): the idle
screen changes when a new config arrives, and the citizen's choice goes out in the request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.app import Appliance
from appliance.config import parse_config
from appliance.hw.ports import ScreenState
from appliance.hw.ports.controls import SimulatedButton
from appliance.hw.ports.screen import SimulatedScreen
from guichet import contract
from guichet import signalling as sig
from guichet.schedule import AccessMode, CounterSchedule, Opening, ServiceInfo
from tests.appliance.call_support import FakeFleetServer
from tests.appliance.mqtt_observer import Observer
from tests.appliance.test_app import DEVICE, config_text, observer, running
from tests.support.mosquitto import Broker

__all__ = ["observer"]  # the fixture
TOKEN = "counter-token-0123456789"
CONFIG = contract.topic(DEVICE, contract.Kind.CONFIG)
SERVICES = [
    ServiceInfo(code="caf", label="Caf", phone="32 30"),
    ServiceInfo(code="msa", label="MSA"),
]


def config(version: int, openings: list[Opening]) -> bytes:
    now = datetime.now(UTC)
    schedule = CounterSchedule(
        generated_at=now, until=now + timedelta(days=14), services=SERVICES, openings=openings
    )
    message = contract.DeviceConfig(version=version, issued_at=now, schedule=schedule)
    return contract.encode(message)


async def shown(screen: SimulatedScreen, state: ScreenState) -> None:
    async with asyncio.timeout(10):
        while screen.state is not state:
            await asyncio.sleep(0.02)


async def test_the_counter_follows_its_schedule_and_sends_the_choice(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    text = config_text(tmp_path / "data", broker.url) + (
        f'\n[call]\nserver_url = "{server.url}"\ntoken = "{TOKEN}"\nlong_press_s = 1\n'
    )
    now = datetime.now(UTC)
    later = now + timedelta(days=2)
    try:
        appliance = Appliance(parse_config(text))
        async with running(appliance):
            screen = appliance.hardware.screen
            assert isinstance(screen, SimulatedScreen)
            await shown(screen, ScreenState.IDLE)  # no schedule yet: the welcome's service
            assert screen.info == {"service": "Caf — Allocations familiales"}

            observer.publish(
                CONFIG,
                config(
                    1,
                    [
                        Opening(
                            service="caf",
                            mode=AccessMode.SLOT,
                            start=later,
                            end=later + timedelta(hours=3),
                        )
                    ],
                ),
                retain=True,
            )
            await shown(screen, ScreenState.CLOSED)
            assert screen.info["phone"] == "32 30"
            [line] = screen.info["lines"]
            assert line.startswith("Caf : ")

            open_now = [
                Opening(
                    service=code,
                    mode=AccessMode.SLOT,
                    start=now - timedelta(hours=1),
                    end=now + timedelta(hours=1),
                )
                for code in ("caf", "msa")
            ]
            observer.publish(CONFIG, config(2, open_now), retain=True)
            await shown(screen, ScreenState.CHOICE)
            assert screen.info == {"choices": ["Caf", "MSA"], "selected": 0}

            button = appliance.hardware.button
            assert isinstance(button, SimulatedButton)
            button.press()
            button.release(0.1)
            async with asyncio.timeout(10):
                while screen.info.get("selected") != 1:
                    await asyncio.sleep(0.02)
            button.press()
            button.release(1.5)
            request = await server.expect(sig.CallRequest)
            assert request.service == "msa"
            await shown(screen, ScreenState.WAITING)
            assert screen.info.get("service") == "MSA"
    finally:
        await server.stop()
