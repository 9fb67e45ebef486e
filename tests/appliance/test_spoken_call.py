"""Issue 15 end to end on the counter: the real espeak-ng adapter (its process started with
each screen's words on stdin, cut at the next) driven by the real call agent and state
machine, the real gpiozero button on mock pins, a real signalling server on loopback and
real aiortc peers. The loudspeaker is a stand-in binary that records what it was given and
"plays" until killed, so the test sees which utterance was cut when."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.call.agent import CallAgent
from appliance.call.machine import CallTimings, Phase
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from appliance.hw.speech import EspeakSpeaker
from guichet import signalling as sig
from tests.appliance.call_support import AgentPeer, FakeFleetServer, RecordingScreen, TestMedia
from tests.appliance.test_call_agent import BUTTON_PIN, LIGHT_PIN, TOKEN, FakeClock
from tests.appliance.test_speech import DONE_TIMEOUT_S, alive, slow_espeak

pytestmark = pytest.mark.slow


async def heard(tmp_path: Path, text: str) -> int:
    """Wait until the stand-in was given ``text``; its process id. (An utterance cut before
    its process started was never given: a new screen came first.)"""
    async with asyncio.timeout(DONE_TIMEOUT_S):
        while True:
            for path in tmp_path.glob("said-*"):
                if path.read_text() == text:
                    return int(path.name[5:])
            await asyncio.sleep(0.02)


def pids(tmp_path: Path) -> list[int]:
    return [int(path.name[5:]) for path in tmp_path.glob("said-*")]


async def wait_phase(agent: CallAgent, screen: RecordingScreen, phase: Phase) -> None:
    async with asyncio.timeout(15):
        while agent.machine.phase is not phase:
            screen.changed.clear()
            await screen.changed.wait()


async def test_each_screen_is_said_and_the_call_silences_it(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    factory = MockFactory(pin_class=MockPWMPin)
    clock = FakeClock()
    button = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory, bounce_s=None, clock=clock)
    light = GpiozeroLight(LIGHT_PIN, pin_factory=factory)
    speaker = EspeakSpeaker(binary=str(slow_espeak(tmp_path)), volume_pct=80)
    screen = RecordingScreen()
    agent = CallAgent(
        server_url=server.url,
        token=TOKEN,
        button=button,
        light=light,
        screen=screen,
        media=TestMedia(),
        emit=lambda kind, data: None,
        timings=CallTimings(restore_s=5.0),
        reconnect_min_s=0.05,
        speaker=speaker,
        speech=True,
    )
    task = asyncio.create_task(agent.run())
    agent_peer = AgentPeer()
    try:
        await wait_phase(agent, screen, Phase.IDLE)
        welcome_pid = await heard(
            tmp_path,
            "Bienvenue. Ce bouton vous met en relation avec Caf — Allocations familiales. "
            "Pour appeler, appuyez sur le bouton.",
        )

        pin = factory.pin(BUTTON_PIN)  # a short press calls the one service open
        pin.drive_low()
        clock.now += 0.2
        pin.drive_high()
        request = await server.expect(sig.CallRequest)
        await server.send(
            sig.CallQueued(
                call_id=request.call_id,
                service="caf",
                service_label="Caf",
                requested_at=datetime.now(UTC),
                position=2,
                estimated_wait_s=480,
            )
        )
        await wait_phase(agent, screen, Phase.WAITING)
        await heard(  # the server named the service anew: the whole screen again
            tmp_path,
            "Nous appelons un conseiller. Caf. Vous êtes en position 2 dans la file d’attente. "
            "Attente estimée : environ 8 minutes. "
            "Restez devant l’écran, un conseiller va vous répondre.",
        )
        assert not alive(welcome_pid)  # each screen cut the one before

        await server.answer_call(request.call_id, agent_peer)
        await wait_phase(agent, screen, Phase.IN_CALL)
        await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
        assert [pid for pid in pids(tmp_path) if alive(pid)] == []  # silent during the call
        assert speaker.spoken == 0
        started = len(pids(tmp_path))
        agent.speak("Bonjour")  # whatever asks during the call: the agent keeps it quiet
        await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
        assert len(pids(tmp_path)) == started
    finally:
        await agent_peer.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop()
        speaker.close()
        button.close()
        light.close()


async def test_the_volume_is_espeak_ngs_amplitude(tmp_path: Path) -> None:
    """The administrator's volume reaches the real espeak-ng: louder audio in the WAV."""
    from tests.appliance.test_speech import read_wav

    peaks = []
    for volume in (20, 80):
        out = tmp_path / f"{volume}.wav"
        speaker = EspeakSpeaker(output=out, volume_pct=volume)
        speaker.say("Guichet fermé.")
        await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
        _, samples = read_wav(out)
        peaks.append(max(abs(s) for s in samples))
        speaker.close()
    assert peaks[1] > 2 * peaks[0]
