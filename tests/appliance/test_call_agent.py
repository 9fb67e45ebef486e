"""The call agent end to end on the counter's side: the real gpiozero button on mock pins,
the real signalling client against a real ``websockets`` server on loopback speaking the
contract, and real aiortc peers (the "agent" plays the browser's part)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.call.agent import CallAgent
from appliance.call.machine import CallTimings, Phase
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from appliance.hw.ports import LightPattern, ScreenState
from guichet import signalling as sig
from guichet.contract import EventKind, Scalar, SurveyAnswer
from guichet.quality import QUALITY_KEYS
from tests.appliance.call_support import AgentPeer, FakeFleetServer, RecordingScreen, TestMedia

pytestmark = pytest.mark.slow

TOKEN = "counter-token-0123456789"
BUTTON_PIN, LIGHT_PIN = 17, 27
LONG_PRESS_S = 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    server: FakeFleetServer
    agent: CallAgent
    factory: MockFactory
    clock: FakeClock
    screen: RecordingScreen
    media: TestMedia
    light: GpiozeroLight
    events: list[tuple[EventKind, dict[str, Scalar]]] = field(default_factory=list)
    event_seen: asyncio.Event = field(default_factory=asyncio.Event)
    surveys: list[SurveyAnswer] = field(default_factory=list)

    def press(self, held_s: float = 0.1) -> None:
        pin = self.factory.pin(BUTTON_PIN)
        pin.drive_low()
        self.clock.now += held_s
        pin.drive_high()

    async def wait_phase(self, phase: Phase, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while self.agent.machine.phase is not phase:
                self.screen.changed.clear()
                await self.screen.changed.wait()

    async def wait_event(self, kind: EventKind, timeout: float = 10) -> dict[str, Scalar]:
        async with asyncio.timeout(timeout):
            while True:
                for k, data in self.events:
                    if k is kind:
                        return data
                self.event_seen.clear()
                await self.event_seen.wait()

    async def call_in_progress(self, agent_peer: AgentPeer) -> sig.CallRequest:
        await self.wait_phase(Phase.IDLE)
        self.press()
        request = await self.server.expect(sig.CallRequest)
        await self.server.send(
            sig.CallQueued(
                call_id=request.call_id,
                service="caf",
                service_label="Caf — Allocations familiales",
                requested_at=datetime.now(UTC),
            )
        )
        await self.wait_phase(Phase.WAITING)
        await self.server.answer_call(request.call_id, agent_peer)
        await self.wait_phase(Phase.IN_CALL)
        return request


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """The agent; ``indirect`` parameter "questionnaire": with the questionnaire after calls."""
    questionnaire = getattr(request, "param", None) == "questionnaire"
    loop = asyncio.get_running_loop()
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    factory = MockFactory(pin_class=MockPWMPin)
    clock = FakeClock()
    button = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory, bounce_s=None, clock=clock)
    light = GpiozeroLight(LIGHT_PIN, pin_factory=factory)
    screen, media = RecordingScreen(), TestMedia()
    timings = CallTimings(
        long_press_s=LONG_PRESS_S, restore_s=2.0, ended_screen_s=0.2, out_of_service_after_s=0.5
    )
    holder: list[Rig] = []

    def emit(kind: EventKind, data: dict[str, Scalar]) -> None:
        holder[0].events.append((kind, data))
        holder[0].event_seen.set()

    agent = CallAgent(
        server_url=server.url,
        token=TOKEN,
        button=button,
        light=light,
        screen=screen,
        media=media,
        emit=emit,
        timings=timings,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        submit_survey=(lambda answer: holder[0].surveys.append(answer)) if questionnaire else None,
    )
    rig = Rig(server, agent, factory, clock, screen, media, light)
    holder.append(rig)
    task = asyncio.create_task(agent.run())
    try:
        yield rig
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()  # it did not die on its own
        await server.stop()
        button.close()
        light.close()


async def test_press_answer_media_then_long_press_hangs_up(rig: Rig) -> None:
    agent_peer = AgentPeer()
    try:
        request = await rig.call_in_progress(agent_peer)
        assert rig.light.pattern is LightPattern.IN_CALL
        assert (await rig.server.expect(sig.MediaState)).state == "connected"
        started = await rig.wait_event(EventKind.CALL_STARTED)
        assert started == {"call_id": str(request.call_id), "service": "caf"}
        await agent_peer.wait_frames(5)  # the counter's test pattern reaches the agent
        async with asyncio.timeout(10):
            await rig.screen.frame_seen.wait()  # and the agent's video reaches the screen

        rig.press(held_s=LONG_PRESS_S + 0.5)
        hangup = await rig.server.expect(sig.Hangup)
        assert hangup == sig.Hangup(call_id=request.call_id, reason="hangup_counter")
        ended = await rig.wait_event(EventKind.CALL_ENDED)
        assert ended["reason"] == "hangup_counter"
        call_keys = {"call_id", "service", "duration_s", "reason"}
        assert call_keys <= set(ended) <= call_keys | set(QUALITY_KEYS)  # no personal data
        assert ended["measured_s"] > 0  # the quality summary, measured on the real peer
        await rig.wait_phase(Phase.IDLE)
        assert rig.light.pattern is LightPattern.IDLE
        async with asyncio.timeout(10):
            await rig.agent.media_released.wait()
        assert rig.media.cameras[0]._input._frames is None  # type: ignore[attr-defined]
        assert not rig.media.speakers[0].is_open
    finally:
        await agent_peer.close()


@pytest.mark.parametrize("rig", ["questionnaire"], indirect=True)
async def test_after_an_answered_call_the_button_answers_the_questionnaire_and_says_so(
    rig: Rig,
) -> None:
    """Issue 17: a press right after a call seemed to do nothing. It moves the questionnaire's
    answer — the agent's summary (what ``guichet demo press`` prints) says so — and the
    demo's skip leaves the questionnaire."""
    agent_peer = AgentPeer()
    try:
        request = await rig.call_in_progress(agent_peer)
        rig.press(held_s=LONG_PRESS_S + 0.5)  # the citizen hangs up
        assert (await rig.server.expect(sig.Hangup)).call_id == request.call_id
        await rig.wait_phase(Phase.SURVEY)
        rig.press()  # right after the call
        async with asyncio.timeout(10):
            while "« En partie »" not in rig.agent.summary():
                rig.screen.changed.clear()
                await rig.screen.changed.wait()
        summary = rig.agent.summary()
        assert summary.startswith("questionnaire après l'appel, question 1 sur 3 « Votre")
        assert rig.agent.skip_survey()
        assert not rig.agent.skip_survey()
        assert rig.surveys == []  # nothing was chosen: nothing is sent
        await rig.wait_phase(Phase.IDLE)
        assert rig.agent.summary() == "à l'accueil, prêt à appeler"
        later = []
        while not rig.server.received.empty():
            later.append(rig.server.received.get_nowait())
        assert not any(isinstance(m, sig.CallRequest) for m in later)  # it called no one
    finally:
        await agent_peer.close()


async def test_signalling_drop_mid_call_resumes_without_a_press(rig: Rig) -> None:
    agent_peer = AgentPeer()
    try:
        request = await rig.call_in_progress(agent_peer)
        await rig.server.drop()
        resume = await rig.server.expect(sig.Resume)
        assert resume.call_id == request.call_id
        assert rig.server.connections == 2
        assert rig.agent.machine.phase is Phase.IN_CALL
        await agent_peer.wait_frames(5)  # media kept flowing
        await rig.server.send(sig.CallEnded(call_id=request.call_id, reason="hangup_agent"))
        await rig.wait_phase(Phase.IDLE)
        assert (await rig.wait_event(EventKind.CALL_ENDED))["reason"] == "hangup_agent"
    finally:
        await agent_peer.close()


async def test_not_restored_in_time_ends_failed(rig: Rig) -> None:
    await rig.wait_phase(Phase.IDLE)
    rig.press()
    request = await rig.server.expect(sig.CallRequest)
    await rig.server.stop()  # the server is gone for good
    await rig.server.drop()
    ended = await rig.wait_event(EventKind.CALL_ENDED)
    assert ended == {
        "call_id": str(request.call_id),
        "service": "caf",
        "duration_s": 0.0,
        "reason": "failed",
    }
    assert any(
        state is ScreenState.ENDED and "coupée" in info.get("reason", "")
        for state, info in rig.screen.states
    )
    await rig.wait_phase(Phase.OUT_OF_SERVICE)
    assert rig.light.pattern is LightPattern.FAULT


async def test_nobody_answers_missed_then_idle(rig: Rig) -> None:
    await rig.wait_phase(Phase.IDLE)
    rig.press()
    request = await rig.server.expect(sig.CallRequest)
    assert rig.light.pattern is LightPattern.WAITING
    await rig.server.send(sig.CallEnded(call_id=request.call_id, reason="missed"))
    await rig.screen.wait_for(ScreenState.MISSED)
    await rig.wait_phase(Phase.IDLE)
    assert rig.screen.state is ScreenState.IDLE
    assert rig.light.pattern is LightPattern.IDLE
    assert (await rig.wait_event(EventKind.CALL_ENDED))["reason"] == "missed"


async def test_a_wrong_token_is_refused_and_retried(rig: Rig) -> None:
    await rig.wait_phase(Phase.IDLE)
    rig.server.token = "another-token-0123456789"
    await rig.server.drop()
    await rig.wait_phase(Phase.OUT_OF_SERVICE)
    assert rig.server.refused >= 1
