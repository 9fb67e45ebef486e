"""Issue 15, item 4 — private listening: a USB headset plugged in takes the call's audio
(the speakers go quiet), the screen says so and the telemetry reports the route. The app
runs whole against a real Mosquitto with the simulated hot-plug port; the loudspeaker that
follows the route is driven with real PyAV frames."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.app import Appliance
from appliance.call.machine import CallMachine, Phase
from appliance.config import ApplianceConfig, parse_config
from appliance.errors import HardwareError
from appliance.hw.audio.pyav import NullAudioSink
from appliance.hw.audio.routed import RETRY_S, RoutedSpeaker, alsa_headset_device
from appliance.hw.camera.devices import ConfiguredMedia
from appliance.hw.ports import AudioSink, ScreenState, UsbChange, UsbDevice
from appliance.hw.ports.headset import AudioRouting
from appliance.hw.ports.hotplug import SimulatedHotPlug
from appliance.wiring import Hardware, audio_routing, build_hardware
from guichet import contract
from guichet import signalling as sig
from guichet.contract import AudioRoute
from tests.appliance.mqtt_observer import Observer
from tests.appliance.test_app import DEVICE, TELEMETRY, make_config, running
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.support.mosquitto import Broker

HEADSET = UsbDevice(
    path="/sys/devices/usb1/1-2", vendor_id="046d", product_id="0a8f", product="H390 headset",
    kind="audio",
)  # fmt: skip
PRINTER = UsbDevice(
    path="/sys/devices/usb1/1-1", vendor_id="03f0", product_id="002a", product=None,
    kind="printer",
)  # fmt: skip


def frame() -> av.AudioFrame:
    samples = np.zeros((1, 960 * 2), dtype=np.int16)  # 20 ms of 48 kHz stereo silence
    out = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
    out.sample_rate, out.time_base = 48_000, Fraction(1, 48_000)
    return out


class Sinks:
    """The sinks a ``RoutedSpeaker`` made, in order, with their route and device."""

    def __init__(self, fail_headset: bool = False) -> None:
        self.made: list[tuple[AudioRoute, str | None, NullAudioSink]] = []
        self.fail_headset = fail_headset

    def __call__(self, route: AudioRoute, device: str | None) -> AudioSink:
        if route is AudioRoute.HEADSET and self.fail_headset:
            raise HardwareError("headset busy")
        sink = NullAudioSink()
        self.made.append((route, device, sink))
        return sink


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the route ----------------------------------------------------------------------------------


def test_a_usb_audio_device_is_a_headset_until_it_is_unplugged() -> None:
    routing = AudioRouting()
    heard: list[AudioRoute] = []
    routing.when_changed(heard.append)
    routing.usb_changed(UsbChange.ADDED, PRINTER)
    assert routing.route is AudioRoute.SPEAKERS
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    assert (routing.route, routing.headset_device()) == (AudioRoute.HEADSET, "default")
    routing.usb_changed(UsbChange.REMOVED, PRINTER)
    assert routing.route is AudioRoute.HEADSET
    routing.usb_changed(UsbChange.REMOVED, HEADSET)
    assert routing.route is AudioRoute.SPEAKERS
    assert heard == [AudioRoute.HEADSET, AudioRoute.SPEAKERS]


def test_the_headsets_alsa_device_is_its_sound_card(tmp_path: Path) -> None:
    usb = UsbDevice(str(tmp_path / "1-2"), "046d", "0a8f", None, "audio")
    assert alsa_headset_device(usb) is None  # the kernel has not made the card yet
    card = tmp_path / "1-2" / "1-2:1.0" / "sound" / "card2"
    card.mkdir(parents=True)
    (card / "id").write_text("H390\n")
    (card / "pcmC2D0c").mkdir()  # a microphone only: not where the call is heard
    assert alsa_headset_device(usb) is None
    (card / "pcmC2D0p").mkdir()
    assert alsa_headset_device(usb) == "plughw:CARD=H390,DEV=0"


def test_the_configuration_decides_whether_a_headset_can_take_the_call() -> None:
    base = '[device]\nid = "guichet-test"\nsite = "Essai"\n[hardware]\n'
    for extra, routed in (
        ("", True),  # no loudspeaker (demo, tests): the route alone
        ('audio_out = "alsa"\n', True),
        ('audio_out = "alsa"\nheadset = "none"\n', False),
        ('audio_out = "pulse"\n', False),  # PulseAudio moves streams itself
    ):
        assert (audio_routing(parse_config(base + extra).hardware) is not None) is routed
    fixed = parse_config(base + 'audio_out = "alsa"\nheadset_device = "plughw:CARD=Casque"\n')
    routing = audio_routing(fixed.hardware)
    assert routing is not None
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    assert routing.headset_device() == "plughw:CARD=Casque"


# --- the loudspeaker that follows it ------------------------------------------------------------


async def test_the_calls_audio_moves_to_the_headset_and_back() -> None:
    routing, sinks = AudioRouting(device_of=lambda usb: "plughw:CARD=H390,DEV=0"), Sinks()
    speaker = RoutedSpeaker(routing, sinks)
    await speaker.open()
    await speaker.play(frame())
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    for _ in range(3):
        await speaker.play(frame())
    routing.usb_changed(UsbChange.REMOVED, HEADSET)
    await speaker.play(frame())
    await speaker.close()
    (r1, _d1, speakers), (r2, d2, headset), (r3, _, again) = sinks.made
    assert (r1, r2, r3) == (AudioRoute.SPEAKERS, AudioRoute.HEADSET, AudioRoute.SPEAKERS)
    assert d2 == "plughw:CARD=H390,DEV=0"
    assert (speakers.frames_played, headset.frames_played, again.frames_played) == (1, 3, 1)
    assert speaker.frames_played == 5  # what the call's tests count, whatever the route
    assert not speakers.is_open  # the speakers went quiet while the headset played
    assert not headset.is_open
    assert not again.is_open
    assert speaker.switches == 2


async def test_a_headset_not_ready_leaves_the_call_on_the_speakers_and_is_retried() -> None:
    ready: list[str] = []
    routing = AudioRouting(device_of=lambda usb: ready[0] if ready else None)
    clock, sinks = FakeClock(), Sinks()
    speaker = RoutedSpeaker(routing, sinks, clock=clock)
    await speaker.open()
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    await speaker.play(frame())  # no sound card yet: the speakers keep playing
    ready.append("plughw:CARD=H390,DEV=0")
    await speaker.play(frame())  # not retried before RETRY_S
    assert speaker.route is AudioRoute.SPEAKERS
    clock.now += RETRY_S
    await speaker.play(frame())
    assert speaker.route is AudioRoute.HEADSET
    assert [s.frames_played for _, _, s in sinks.made] == [2, 1]
    await speaker.close()


async def test_a_headset_that_cannot_open_leaves_the_speakers() -> None:
    routing, sinks = AudioRouting(), Sinks(fail_headset=True)
    speaker = RoutedSpeaker(routing, sinks, clock=FakeClock())
    await speaker.open()
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    await speaker.play(frame())
    assert speaker.route is AudioRoute.SPEAKERS
    assert [s.frames_played for _, _, s in sinks.made] == [0, 1]  # reopened, still heard
    await speaker.close()


async def test_the_configured_media_route_the_calls_loudspeaker() -> None:
    config = parse_config('[device]\nid = "guichet-test"\nsite = "Essai"\n')
    routing = audio_routing(config.hardware)
    assert routing is not None
    speaker = ConfiguredMedia(config.hardware, routing).speaker()
    assert isinstance(speaker, RoutedSpeaker)
    await speaker.open()
    routing.usb_changed(UsbChange.ADDED, HEADSET)
    await speaker.play(frame())
    assert speaker.route is AudioRoute.HEADSET
    await speaker.close()


# --- the screen ---------------------------------------------------------------------------------


def test_the_call_screens_say_a_headset_is_plugged_in() -> None:
    fx = Effects()
    machine = CallMachine(fx, clock=Clock(), new_id=lambda: CALL_ID)
    machine.link_connected(WELCOME)
    machine.headset_changed(True)  # at the welcome screen: nothing to say yet
    assert "headset" not in fx.screens[-1][1]
    machine.pressed()
    assert fx.screens[-1][1]["headset"] is True
    machine.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    machine.media_connected()
    assert fx.screens[-1] == (ScreenState.IN_CALL, {"service": "Caf", "headset": True})
    machine.headset_changed(False)
    assert fx.screens[-1] == (ScreenState.IN_CALL, {"service": "Caf"})
    assert machine.phase is Phase.IN_CALL


# --- the whole counter: plug, route, telemetry --------------------------------------------------


async def next_telemetry(observer: Observer) -> contract.Telemetry:
    telemetry = contract.decode(
        contract.Kind.TELEMETRY, (await observer.next_on(TELEMETRY)).payload
    )
    assert isinstance(telemetry, contract.Telemetry)
    return telemetry


async def route_reported(observer: Observer, route: AudioRoute) -> None:
    async with asyncio.timeout(10):
        while (await next_telemetry(observer)).audio_route is not route:
            pass


@pytest.mark.slow
async def test_a_plugged_headset_moves_the_route_and_the_telemetry_reports_it(
    broker: Broker, tmp_path: Path
) -> None:
    observer = Observer(broker.port, [f"guichet/v1/{DEVICE}/#"]).start()
    try:
        config = make_config(tmp_path, broker.url, interval_s=1)
        async with running(Appliance(config)) as appliance:
            assert (await next_telemetry(observer)).audio_route is AudioRoute.SPEAKERS
            hotplug, routing = appliance.hardware.hotplug, appliance.hardware.audio_routing
            assert isinstance(hotplug, SimulatedHotPlug)
            assert routing is not None
            hotplug.plug(HEADSET)
            await route_reported(observer, AudioRoute.HEADSET)
            assert routing.route is AudioRoute.HEADSET
            hotplug.unplug(HEADSET.path)
            await route_reported(observer, AudioRoute.SPEAKERS)
    finally:
        observer.stop()


@pytest.mark.slow
async def test_a_headset_plugged_before_the_start_takes_the_call_from_the_start(
    broker: Broker, tmp_path: Path
) -> None:
    def with_headset(config: ApplianceConfig, loop: asyncio.AbstractEventLoop) -> Hardware:
        hardware = build_hardware(config, loop)
        assert isinstance(hardware.hotplug, SimulatedHotPlug)
        hardware.hotplug.plug(HEADSET)  # no one watches yet: only listed
        return hardware

    observer = Observer(broker.port, [f"guichet/v1/{DEVICE}/#"]).start()
    try:
        config = make_config(tmp_path, broker.url, interval_s=1)
        async with running(Appliance(config, build=with_headset)):
            assert (await next_telemetry(observer)).audio_route is AudioRoute.HEADSET
    finally:
        observer.stop()
