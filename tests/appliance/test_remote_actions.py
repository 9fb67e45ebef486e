"""Remote support's actions on a running counter (issue 14), through a real Mosquitto: the
``cmd`` goes in, the ``cmd/ack`` comes out in French. Restart: the process exits cleanly and,
started again as systemd would, reconnects. Self-test: each check in the ack, and a
``selftest`` event. Reboot: through the system port. Refused while a citizen is at the
counter; the configuration refresh waits for the retained config it names."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.app import Appliance
from appliance.fleet.commands import CommandHandler
from appliance.fleet.settings import RuntimeSettings
from appliance.hw.ports.levels import SimulatedBacklight, SimulatedVolume
from appliance.hw.ports.printer import SimulatedPrinter
from appliance.hw.ports.system import SimulatedSystemPower
from appliance.remote_actions import RemoteActions
from guichet import contract
from guichet.actions import Action
from guichet.events import CheckOutcome
from tests.appliance.mqtt_observer import Observer
from tests.appliance.test_app import (
    DEVICE,
    config_text,
    make_config,
    next_event,
    running,
    start_counter,
    wait_exit,
    wait_status,
)
from tests.support.mosquitto import Broker

CMD = contract.topic(DEVICE, contract.Kind.CMD)
ACK = contract.topic(DEVICE, contract.Kind.CMD_ACK)
CONFIG = contract.topic(DEVICE, contract.Kind.CONFIG)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker.port, [f"guichet/v1/{DEVICE}/#"]).start()
    yield obs
    obs.stop()


def command(name: str, **args: contract.Scalar) -> contract.Command:
    return contract.Command(request_id=uuid.uuid4(), at=contract.utcnow(), name=name, args=args)


async def ask(observer: Observer, sent: contract.Command) -> contract.CommandAck:
    """Publish ``sent`` and return its ack (other acks on the way are skipped)."""
    await asyncio.to_thread(observer.wait_subscribed)
    observer.publish(CMD, contract.encode(sent))
    while True:
        ack = contract.decode(contract.Kind.CMD_ACK, (await observer.next_on(ACK, 20)).payload)
        assert isinstance(ack, contract.CommandAck)
        if ack.request_id == sent.request_id:
            return ack


class Occupied:
    """Stands in for the call agent: a citizen is in a call."""

    def occupied(self) -> str:
        return "en communication avec un agent"


async def test_selftest_answers_each_check_and_is_kept_as_an_event(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        assert (await next_event(observer)).kind is contract.EventKind.COUNTER_STARTED
        ack = await ask(observer, command("selftest"))
        event = await next_event(observer)
    assert ack.ok, ack.detail
    outcomes = {c.name: c.outcome for c in ack.checks}
    assert outcomes == {
        "camera": CheckOutcome.OK,
        "screen": CheckOutcome.OK,
        "printer": CheckOutcome.OK,
        "scanner": CheckOutcome.OK,
        "network": CheckOutcome.OK,
        "broker": CheckOutcome.OK,
    }
    assert ack.detail == "autotest réussi (6 contrôles)"
    assert next(c for c in ack.checks if c.name == "broker").detail.startswith("127.0.0.1:")
    assert event.kind is contract.EventKind.SELFTEST
    assert event.data["passed"] is True


async def test_a_failed_check_says_why(broker: Broker, tmp_path: Path, observer: Observer) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        printer = appliance.hardware.printer
        assert isinstance(printer, SimulatedPrinter)
        printer.stop("plus de papier")
        ack = await ask(observer, command("selftest"))
    assert ack.ok
    check = next(c for c in ack.checks if c.name == "printer")
    assert check.outcome is CheckOutcome.FAILED
    assert "plus de papier" in check.detail
    assert ack.detail == "autotest : 1 contrôle(s) en échec sur 6"


async def test_reboot_goes_through_the_system_port(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        power = appliance.hardware.power
        assert isinstance(power, SimulatedSystemPower)
        ack = await ask(observer, command("reboot"))
        assert (ack.ok, ack.detail) == (True, "redémarrage du boîtier")
        async with asyncio.timeout(10):
            while power.reboots == 0:
                await asyncio.sleep(0.05)


async def test_disruptive_actions_are_refused_while_a_citizen_is_there(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        appliance.call_agent = Occupied()  # type: ignore[assignment]
        acks = [await ask(observer, command(name)) for name in ("restart", "reboot", "selftest")]
        power = appliance.hardware.power
        assert isinstance(power, SimulatedSystemPower)
        assert power.reboots == 0
        appliance.call_agent = None
    for ack in acks:
        assert not ack.ok
        assert ack.detail == "refusé : un usager est au guichet (en communication avec un agent)"


async def test_refresh_config_answers_once_the_named_config_is_applied(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    async with running(Appliance(make_config(tmp_path, broker.url))) as appliance:
        await asyncio.wait_for(appliance.link.wait_connected(), 10)
        config = contract.DeviceConfig(version=1234, issued_at=contract.utcnow())
        observer.publish(CONFIG, contract.encode(config), retain=True)
        ack = await ask(observer, command("refresh_config", version=1234))
        assert appliance.settings.device_config == config
        refused = await ask(observer, command("refresh_config", version="1234"))
    assert (ack.ok, ack.detail) == (True, "configuration n° 1234 appliquée")
    assert (refused.ok, refused.detail) == (False, "argument « version » entier attendu")


async def test_restart_exits_cleanly_and_the_counter_comes_back(
    broker: Broker, tmp_path: Path, observer: Observer
) -> None:
    """systemd's ``Restart=always`` is played by the test: the process exits 0 after its
    ack, is started again, and reconnects."""
    config_file, log = tmp_path / "counter.toml", tmp_path / "counter.log"
    config_file.write_text(config_text(tmp_path / "data", broker.url))
    process = start_counter(config_file, log)
    again = None
    try:
        await wait_status(observer, "online")
        ack = await ask(observer, command("restart"))
        assert (ack.ok, ack.detail) == (True, "redémarrage du logiciel du guichet")
        assert (await wait_status(observer, "offline")).reason == "shutdown"
        assert await wait_exit(process, 15) == 0
        again = start_counter(config_file, log)
        status = await wait_status(observer, "online")
        assert status.reason == "connected"
    finally:
        for p in (process, again):
            if p is not None:
                p.kill()
                await wait_exit(p)


# --- the handlers alone ----------------------------------------------------------------------


def actions(
    busy: str | None = None,
    config_wait_s: float = 0.2,
    volume: SimulatedVolume | None = None,
    backlight: SimulatedBacklight | None = None,
) -> tuple[CommandHandler, list[str]]:
    settings = RuntimeSettings(30)
    stops: list[str] = []
    handler = CommandHandler(settings)

    async def no_checks() -> list:  # type: ignore[type-arg]
        return []

    RemoteActions(
        settings=settings,
        power=SimulatedSystemPower(),
        volume=volume or SimulatedVolume(),
        backlight=backlight or SimulatedBacklight(),
        stop=lambda: stops.append("stop"),
        busy=lambda: busy,
        run_checks=no_checks,
        emit=lambda kind, data: None,
        after_ack_s=0.0,
        config_wait_s=config_wait_s,
    ).register(handler)
    return handler, stops


async def test_a_config_that_never_comes_is_a_clear_failure() -> None:
    handler, _ = actions()
    ack = await handler.handle(command("refresh_config", version=99))
    assert not ack.ok
    assert ack.detail == "configuration n° 99 non reçue en 0 s (le guichet a la n° aucune)"


async def test_a_refresh_is_allowed_during_a_call() -> None:
    handler, stops = actions(busy="en communication avec un agent", config_wait_s=0.05)
    refresh = await handler.handle(command("refresh_config", version=1))
    restart = await handler.handle(command("restart"))
    assert (refresh.detail or "").startswith("configuration n° 1 non reçue")
    assert not restart.ok
    assert stops == []


async def test_a_repeated_restart_runs_once() -> None:
    handler, stops = actions()
    sent = command("restart")
    first, second = await asyncio.gather(handler.handle(sent), handler.handle(sent))
    assert first == second
    await asyncio.sleep(0.05)
    assert stops == ["stop"]


@pytest.mark.parametrize("name", [a.value for a in Action])
async def test_every_action_is_registered(name: str) -> None:
    handler, _ = actions()
    ack = await handler.handle(command(name))
    assert ack.detail != "commande inconnue"


async def test_volume_and_brightness_are_set_through_their_ports() -> None:
    volume, backlight = SimulatedVolume(), SimulatedBacklight()
    handler, _ = actions(volume=volume, backlight=backlight, busy="en communication")
    louder = await handler.handle(command("set_volume", percent=85))
    dimmer = await handler.handle(command("set_brightness", percent=40))
    assert (louder.ok, louder.detail) == (True, "volume du haut-parleur réglé à 85 %")
    assert (dimmer.ok, dimmer.detail) == (True, "luminosité de l'écran réglée à 40 %")
    assert (volume.percent, backlight.percent) == (85, 40)  # a call does not stop them


@pytest.mark.parametrize("percent", [-1, 101, "50", True, None])
async def test_a_level_outside_0_to_100_is_refused(percent: contract.Scalar) -> None:
    handler, _ = actions()
    ack = await handler.handle(command("set_volume", percent=percent))
    assert (ack.ok, ack.detail) == (False, "argument « percent » : entier de 0 à 100 attendu")


async def test_absent_hardware_refuses_with_its_reason() -> None:
    why = "la luminosité de cet écran ne se règle pas à distance"
    handler, _ = actions(backlight=SimulatedBacklight(refusal=why))
    ack = await handler.handle(command("set_brightness", percent=50))
    assert (ack.ok, ack.detail) == (False, why)
