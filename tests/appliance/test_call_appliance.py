"""The call agent inside the whole counter: ``[call]`` configured → the supervisor runs it,
its events go out over MQTT (real Mosquitto), and it owns the light."""

from __future__ import annotations

from pathlib import Path

from appliance.app import Appliance
from appliance.call.machine import Phase
from appliance.config import parse_config
from appliance.hw.ports import LightPattern
from appliance.hw.ports.controls import SimulatedButton
from guichet import contract
from guichet import signalling as sig
from tests.appliance.call_support import FakeFleetServer
from tests.appliance.mqtt_observer import Observer
from tests.appliance.test_app import (
    EVENTS,
    WatchedLight,
    as_event,
    config_text,
    observer,
    running,
    with_watched_light,
)
from tests.support.mosquitto import Broker

__all__ = ["observer"]  # the fixture, imported for use here
TOKEN = "counter-token-0123456789"


async def test_missed_call_is_published_and_counter_back_to_idle(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    text = config_text(tmp_path / "data", broker.url) + (
        f'\n[call]\nserver_url = "{server.url}"\ntoken = "{TOKEN}"\nended_screen_s = 1\n'
    )
    try:
        appliance = Appliance(parse_config(text), build=with_watched_light)
        async with running(appliance):
            agent = appliance.call_agent
            assert agent is not None
            assert "status-light" not in appliance.supervisor.health
            light = appliance.hardware.light
            assert isinstance(light, WatchedLight)
            await light.wait_for(LightPattern.IDLE)  # welcomed by the server: ready
            assert agent.machine.phase is Phase.IDLE
            button = appliance.hardware.button
            assert isinstance(button, SimulatedButton)
            button.press()
            button.release()
            request = await server.expect(sig.CallRequest)
            await server.send(sig.CallEnded(call_id=request.call_id, reason="missed"))
            while True:
                event = as_event(await observer.next_on(EVENTS))
                if event.kind is contract.EventKind.CALL_ENDED:
                    break
            assert event.data["call_id"] == str(request.call_id)
            assert event.data["reason"] == "missed"
    finally:
        await server.stop()
