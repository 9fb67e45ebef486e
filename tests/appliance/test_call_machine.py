"""The call state machine on its own: inputs in, effects out (no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.phases import ENDED_SCREEN, OUT_OF_SERVICE, RESTORE, RING
from appliance.hw.ports import LightPattern, ScreenInfo, ScreenState
from guichet import signalling as sig
from guichet.contract import EventKind, Scalar, SurveyAnswer

CALL_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
WELCOME = sig.Welcome(
    device_id="c1", service="caf", service_label="Caf", ring_timeout_s=60, ice_servers=[]
)


@dataclass
class Effects:
    sent: list[sig.CounterToServer] = field(default_factory=list)
    lights: list[LightPattern] = field(default_factory=list)
    screens: list[tuple[ScreenState, ScreenInfo]] = field(default_factory=list)
    events: list[tuple[EventKind, dict[str, Scalar]]] = field(default_factory=list)
    timers: dict[str, float] = field(default_factory=dict)
    releases: int = 0
    surveys: list[SurveyAnswer] = field(default_factory=list)
    spoken: list[str | None] = field(default_factory=list)
    quality: dict[str, Scalar] = field(default_factory=dict)  # what call_quality() returns

    def send(self, message: sig.CounterToServer) -> None:
        self.sent.append(message)

    def light(self, pattern: LightPattern) -> None:
        self.lights.append(pattern)

    def screen(self, state: ScreenState, info: ScreenInfo) -> None:
        self.screens.append((state, info))

    def emit(self, kind: EventKind, data: dict[str, Scalar]) -> None:
        self.events.append((kind, data))

    def start_timer(self, name: str, delay_s: float) -> None:
        self.timers[name] = delay_s

    def cancel_timer(self, name: str) -> None:
        self.timers.pop(name, None)

    def release_media(self) -> None:
        self.releases += 1

    def call_quality(self) -> dict[str, Scalar]:
        return dict(self.quality)

    def survey(self, answer: SurveyAnswer) -> None:
        self.surveys.append(answer)

    def speak(self, text: str | None) -> None:
        self.spoken.append(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fx() -> Effects:
    return Effects()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def machine(fx: Effects, clock: Clock) -> CallMachine:
    m = CallMachine(fx, CallTimings(long_press_s=2.0), clock=clock, new_id=lambda: CALL_ID)
    m.link_connected(WELCOME)
    return m


def in_call(m: CallMachine) -> None:
    m.pressed()
    m.queued(
        sig.CallQueued(
            call_id=CALL_ID, service="caf", service_label="Caf", requested_at=datetime.now(UTC)
        )
    )
    m.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    m.media_connected()


def test_starts_out_of_service_until_welcomed(fx: Effects, clock: Clock) -> None:
    m = CallMachine(fx, clock=clock)
    assert m.phase is Phase.OUT_OF_SERVICE
    assert fx.lights[-1] is LightPattern.FAULT
    m.pressed()
    assert fx.sent == []
    m.link_connected(WELCOME)
    assert m.phase is Phase.IDLE
    assert fx.screens[-1] == (ScreenState.IDLE, {"service": "Caf"})


def test_press_queue_answer_connect(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    assert fx.sent == [sig.CallRequest(call_id=CALL_ID)]
    assert (machine.phase, fx.lights[-1]) == (Phase.REQUESTING, LightPattern.WAITING)
    assert fx.screens[-1][0] is ScreenState.WAITING
    machine.pressed()  # pressing again while waiting does nothing
    assert len(fx.sent) == 1
    in_call(machine)
    assert machine.phase is Phase.IN_CALL
    assert fx.lights[-1] is LightPattern.IN_CALL
    assert fx.screens[-1] == (ScreenState.IN_CALL, {"service": "Caf"})
    assert fx.events == [(EventKind.CALL_STARTED, {"call_id": str(CALL_ID), "service": "caf"})]
    assert fx.sent[-1] == sig.MediaState(call_id=CALL_ID, state="connected")
    assert RESTORE not in fx.timers
    assert RING not in fx.timers


def test_long_press_in_call_hangs_up(machine: CallMachine, fx: Effects, clock: Clock) -> None:
    in_call(machine)
    clock.now += 42
    machine.released(0.3)  # a tap: nothing
    assert machine.phase is Phase.IN_CALL
    machine.released(2.5)
    assert fx.sent[-1] == sig.Hangup(call_id=CALL_ID, reason="hangup_counter")
    assert machine.phase is Phase.ENDED
    assert fx.releases == 1
    kind, data = fx.events[-1]
    assert kind is EventKind.CALL_ENDED
    assert data == {
        "call_id": str(CALL_ID),
        "service": "caf",
        "duration_s": 42.0,
        "reason": "hangup_counter",
    }
    assert fx.screens[-1] == (ScreenState.ENDED, {})
    machine.timer_fired(ENDED_SCREEN)
    assert machine.phase is Phase.IDLE
    assert fx.lights[-1] is LightPattern.IDLE


def test_call_ended_carries_the_quality_summary(
    machine: CallMachine, fx: Effects, clock: Clock
) -> None:
    fx.quality = {"video_kbps_avg": 780, "freezes": 2, "call_id": "not-this-one"}
    in_call(machine)
    clock.now += 30
    machine.released(2.5)
    kind, data = fx.events[-1]
    assert kind is EventKind.CALL_ENDED
    assert data["video_kbps_avg"] == 780
    assert data["freezes"] == 2
    assert data["call_id"] == str(CALL_ID)  # the call's own keys win
    assert data["reason"] == "hangup_counter"


def test_a_call_never_connected_sends_no_quality(machine: CallMachine, fx: Effects) -> None:
    fx.quality = {"video_kbps_avg": 780}
    machine.pressed()
    machine.released(3.0)
    kind, data = fx.events[-1]
    assert kind is EventKind.CALL_ENDED
    assert "video_kbps_avg" not in data


def test_long_press_while_waiting_cancels(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    machine.released(3.0)
    assert fx.sent[-1] == sig.Hangup(call_id=CALL_ID, reason="cancelled")
    assert machine.phase is Phase.ENDED


def test_missed_call_shows_missed_then_idle(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="missed"))
    assert fx.screens[-1] == (ScreenState.MISSED, {"service": "Caf"})
    assert fx.events[-1][1]["reason"] == "missed"
    machine.timer_fired(ENDED_SCREEN)
    assert fx.screens[-1][0] is ScreenState.IDLE


def test_messages_for_another_call_are_ignored(machine: CallMachine) -> None:
    machine.pressed()
    machine.ended_by_server(sig.CallEnded(call_id=uuid.uuid4(), reason="missed"))
    assert machine.phase is Phase.REQUESTING


def test_link_loss_in_call_resumes_on_return(machine: CallMachine, fx: Effects) -> None:
    in_call(machine)
    machine.link_lost()
    assert fx.timers[RESTORE] == 30.0
    assert machine.phase is Phase.IN_CALL
    machine.link_connected(WELCOME)
    assert fx.sent[-1] == sig.Resume(call_id=CALL_ID)
    assert RESTORE not in fx.timers


def test_not_restored_in_time_ends_failed(machine: CallMachine, fx: Effects) -> None:
    in_call(machine)
    machine.link_lost()
    sent = len(fx.sent)
    machine.timer_fired(RESTORE)
    assert len(fx.sent) == sent  # the link is down: nothing to send now
    assert machine.phase is Phase.ENDED
    assert fx.events[-1][1]["reason"] == "failed"
    state, info = fx.screens[-1]
    assert state is ScreenState.ENDED
    assert "coupée" in info.get("reason", "")


def test_media_loss_then_restart(machine: CallMachine, fx: Effects) -> None:
    in_call(machine)
    machine.media_lost()
    assert fx.sent[-1] == sig.MediaState(call_id=CALL_ID, state="failed")
    assert RESTORE in fx.timers
    machine.media_connected()
    assert fx.sent[-1] == sig.MediaState(call_id=CALL_ID, state="restored")
    assert RESTORE not in fx.timers


def test_hangup_while_offline_is_sent_on_return(machine: CallMachine, fx: Effects) -> None:
    in_call(machine)
    machine.link_lost()
    machine.released(2.0)
    assert machine.phase is Phase.ENDED
    machine.link_connected(WELCOME)
    assert fx.sent[-1] == sig.Hangup(call_id=CALL_ID, reason="hangup_counter")


def test_out_of_service_after_a_grace(machine: CallMachine, fx: Effects) -> None:
    machine.link_lost()
    assert machine.phase is Phase.IDLE
    assert OUT_OF_SERVICE in fx.timers
    machine.timer_fired(OUT_OF_SERVICE)
    assert machine.phase is Phase.OUT_OF_SERVICE
    assert fx.screens[-1] == (ScreenState.OUT_OF_SERVICE, {"reason": "fleet_unreachable"})
    assert fx.lights[-1] is LightPattern.FAULT


def test_refused_request_says_why(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    machine.refused(sig.Error(code="closed", message="Aucun service n'est ouvert."))
    assert fx.screens[-1] == (
        ScreenState.MISSED,
        {"service": "Caf", "reason": "Aucun service n'est ouvert."},
    )


def test_no_word_from_the_server_gives_up_ringing(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    machine.queued(
        sig.CallQueued(
            call_id=CALL_ID, service="caf", service_label="Caf", requested_at=datetime.now(UTC)
        )
    )
    assert fx.timers[RING] == 60 + 15.0
    machine.timer_fired(RING)
    assert fx.sent[-1] == sig.Hangup(call_id=CALL_ID, reason="cancelled")
    assert fx.screens[-1][0] is ScreenState.MISSED
