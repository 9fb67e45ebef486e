"""The call machine with a schedule and a questionnaire: what IDLE shows, what the button
does there, and the questionnaire after an answered call (pure: inputs in, effects out)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.phases import ENDED_SCREEN, MINUTE, QUESTION, QUESTION_WARNING
from appliance.call.summary import PHASE_SUMMARIES, SURVEY_SUMMARY, summary
from appliance.hw.ports import LightPattern, ScreenState
from guichet import signalling as sig
from guichet.questionnaire import Choice, Question, Questionnaire, default_questionnaire
from guichet.schedule import (
    AccessMode,
    BookedAppointment,
    CounterSchedule,
    Opening,
    ServiceInfo,
)
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects

# Tuesday 13 January 2026, Paris = UTC+1 in winter.
MONDAY = datetime(2026, 1, 12, tzinfo=UTC)
SHORT, LONG = 0.2, 2.5  # held seconds; the machine's long press is 2 s
WARNING_S = CallTimings().more_time_warning_s


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Paris wall time on day ``day`` of the week of MONDAY (0 = Monday), as UTC."""
    return MONDAY + timedelta(days=day, hours=hour - 1, minutes=minute)


SERVICES = [
    ServiceInfo(code="caf", label="Caf", phone="32 30"),
    ServiceInfo(code="msa", label="MSA"),
    ServiceInfo(code="carsat", label="Carsat"),
]


def schedule(phone: str | None = None) -> CounterSchedule:
    """Tuesday: Caf 9–12 by slot, MSA 10–12 permanence; Thursday Caf 14–17; Carsat only by
    appointment (window Wednesday 9–12), one appointment booked Wednesday 10:00."""
    return CounterSchedule(
        generated_at=MONDAY,
        until=MONDAY + timedelta(days=14),
        services=SERVICES,
        openings=[
            Opening(service="caf", mode=AccessMode.SLOT, start=at(1, 9), end=at(1, 12)),
            Opening(
                service="msa",
                mode=AccessMode.PERMANENCE,
                start=at(1, 10),
                end=at(1, 12),
                agents=[7],
            ),
            Opening(service="caf", mode=AccessMode.SLOT, start=at(3, 14), end=at(3, 17)),
            Opening(service="carsat", mode=AccessMode.APPOINTMENT, start=at(2, 9), end=at(2, 12)),
        ],
        appointments=[
            BookedAppointment(id=1, service="carsat", start=at(2, 10), end=at(2, 10, 30))
        ],
        phone=phone,
    )


class WallClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fx() -> Effects:
    return Effects()


@pytest.fixture
def wall() -> WallClock:
    return WallClock(at(1, 9, 30))  # Tuesday 9:30: only Caf is open


@pytest.fixture
def machine(fx: Effects, wall: WallClock) -> CallMachine:
    m = CallMachine(
        fx,
        CallTimings(long_press_s=2.0),
        clock=Clock(),
        new_id=lambda: CALL_ID,
        wall_clock=wall,
    )
    m.link_connected(WELCOME)
    m.configure(schedule(), default_questionnaire())
    return m


def answered_call(m: CallMachine, *, service: str = "caf") -> None:
    m.pressed()
    m.queued(
        sig.CallQueued(call_id=CALL_ID, service=service, service_label="Caf", requested_at=MONDAY)
    )
    m.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    m.media_connected()
    m.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="hangup_agent"))


# --- the idle screen and the button ----------------------------------------------------------


def test_one_service_open_shows_it_and_a_press_calls(machine: CallMachine, fx: Effects) -> None:
    assert fx.screens[-1] == (ScreenState.IDLE, {"service": "Caf"})
    machine.pressed()
    assert fx.sent == [sig.CallRequest(call_id=CALL_ID)]  # the server routes
    assert fx.screens[-1] == (ScreenState.WAITING, {"service": "Caf", "waited_s": 0.0})


def test_several_open_the_citizen_chooses_with_short_and_long_presses(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    wall.now = at(1, 10, 15)
    machine.timer_fired(MINUTE)
    assert fx.screens[-1] == (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 0})
    machine.pressed()  # press-down on the list: nothing yet
    assert fx.sent == []
    machine.released(SHORT)
    assert fx.screens[-1] == (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 1})
    machine.pressed()
    machine.released(SHORT)  # after the last, the first again
    assert fx.screens[-1][1]["selected"] == 0
    machine.pressed()
    machine.released(SHORT)
    assert fx.sent == []
    machine.pressed()
    machine.released(LONG)
    assert fx.sent == [sig.CallRequest(call_id=CALL_ID, service="msa")]
    assert machine.phase is Phase.REQUESTING
    assert fx.screens[-1][1]["service"] == "MSA"


def test_nothing_open_shows_next_openings_and_phone_and_a_press_still_asks(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    wall.now = at(1, 12, 0)  # Tuesday noon: everything just closed
    machine.timer_fired(MINUTE)
    assert fx.screens[-1] == (
        ScreenState.CLOSED,
        {
            "lines": ["Caf : jeudi 14 h", "Carsat : sur rendez-vous"],
            "phone": "32 30",  # no counter number: the first service's
        },
    )
    assert fx.lights[-1] is LightPattern.IDLE
    machine.configure(schedule(phone="05 55 00 00 00"), default_questionnaire())
    assert fx.screens[-1][1]["phone"] == "05 55 00 00 00"
    machine.pressed()
    assert fx.sent == [sig.CallRequest(call_id=CALL_ID)]
    machine.refused(sig.Error(code="closed", message="Aucun service n’est ouvert."))
    assert fx.screens[-1] == (ScreenState.MISSED, {"reason": "Aucun service n’est ouvert."})


def test_an_appointment_due_now_is_announced(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    wall.now = at(2, 9, 52)  # within the 10-minute tolerance of Wednesday 10:00
    machine.timer_fired(MINUTE)
    assert fx.screens[-1] == (ScreenState.APPOINTMENT, {"service": "Carsat"})
    machine.pressed()
    assert fx.sent == [sig.CallRequest(call_id=CALL_ID)]
    assert fx.screens[-1][1]["service"] == "Carsat"


def test_the_idle_screen_follows_the_clock_minute_by_minute(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    assert fx.timers[MINUTE] == pytest.approx(60.2)  # 9:30:00 → just after 9:31:00
    shown = len(fx.screens)
    wall.now = at(
        1,
        9,
        31,
    ) + timedelta(seconds=0.2)
    machine.timer_fired(MINUTE)
    assert len(fx.screens) == shown  # nothing changed: nothing redrawn
    assert fx.timers[MINUTE] == pytest.approx(60.0)
    wall.now = at(1, 10, 0) + timedelta(seconds=0.2)
    machine.timer_fired(MINUTE)
    assert fx.screens[-1][0] is ScreenState.CHOICE  # MSA's permanence began


def test_a_new_config_changes_the_idle_screen_and_none_brings_back_the_welcome(
    machine: CallMachine, fx: Effects
) -> None:
    empty = CounterSchedule(generated_at=MONDAY, until=MONDAY + timedelta(days=14))
    machine.configure(empty, None)
    assert fx.screens[-1] == (ScreenState.CLOSED, {"lines": []})
    machine.configure(None, None)
    assert fx.screens[-1] == (ScreenState.IDLE, {"service": "Caf"})  # the welcome's service


def test_a_press_after_a_call_brings_the_list_back_without_calling(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    machine.configure(schedule(), None)  # no questionnaire
    answered_call(machine)
    assert machine.phase is Phase.ENDED
    wall.now = at(1, 10, 30)
    sent = len(fx.sent)
    machine.pressed()
    machine.released(SHORT)
    assert len(fx.sent) == sent
    assert machine.phase is Phase.IDLE
    assert fx.screens[-1] == (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 0})


# --- the questionnaire -----------------------------------------------------------------------


def test_questionnaire_after_an_answered_call_sends_the_answers_once(
    machine: CallMachine, fx: Effects, wall: WallClock
) -> None:
    answered_call(machine)
    assert machine.phase is Phase.SURVEY
    assert fx.lights[-1] is LightPattern.IDLE
    assert fx.timers[QUESTION_WARNING] + WARNING_S == 30  # the last 10 s offer more time
    state, info = fx.screens[-1]
    assert state is ScreenState.SURVEY
    assert info == {
        "question": "Votre demande a-t-elle été traitée ?",
        "choices": ["Oui", "En partie", "Non"],
        "selected": 0,
        "faces": False,
        "step": 1,
        "steps": 3,
    }
    machine.pressed()  # presses are answers: never a new call
    machine.released(SHORT)
    assert fx.screens[-1][1]["selected"] == 1
    machine.pressed()
    machine.released(LONG)  # "En partie"
    state, info = fx.screens[-1]
    assert (info["step"], info["faces"], len(info["choices"])) == (2, True, 5)
    for _ in range(3):
        machine.released(SHORT)
    machine.released(LONG)  # the fourth face: "Content"
    machine.released(SHORT)
    machine.released(LONG)  # "Oui, moins de 10 km"; the last answer ends it, no call
    assert not any(isinstance(m, sig.CallRequest) for m in fx.sent[1:])
    assert machine.phase is Phase.ENDED
    assert fx.screens[-1] == (ScreenState.ENDED, {})
    assert QUESTION not in fx.timers
    assert QUESTION_WARNING not in fx.timers
    [answer] = fx.surveys
    assert answer.answers == {"dealt_with": "partly", "satisfaction": "4", "travel": "lt10"}
    assert (answer.questionnaire_version, answer.service, answer.at) == (1, "caf", wall.now)
    assert answer.id != CALL_ID  # nothing leads back to the call
    machine.timer_fired(ENDED_SCREEN)
    assert machine.phase is Phase.IDLE
    assert fx.screens[-1] == (ScreenState.IDLE, {"service": "Caf"})


def test_a_question_left_unanswered_abandons_the_rest_but_keeps_what_was_given(
    machine: CallMachine, fx: Effects
) -> None:
    answered_call(machine)
    machine.released(LONG)  # "Oui"
    machine.timer_fired(QUESTION)
    assert machine.phase is Phase.ENDED
    [answer] = fx.surveys
    assert answer.answers == {"dealt_with": "yes"}


def test_nothing_is_sent_when_nothing_was_answered(machine: CallMachine, fx: Effects) -> None:
    answered_call(machine)
    machine.released(SHORT)
    machine.timer_fired(QUESTION)
    assert machine.phase is Phase.ENDED
    assert fx.surveys == []


def test_no_questionnaire_after_a_call_nobody_answered(machine: CallMachine, fx: Effects) -> None:
    machine.pressed()
    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="missed"))
    assert machine.phase is Phase.ENDED
    assert fx.screens[-1][0] is ScreenState.MISSED


def test_the_servers_questionnaire_and_its_version_are_used(
    machine: CallMachine, fx: Effects
) -> None:
    custom = Questionnaire(
        version=4,
        timeout_s=12,
        questions=[
            Question(
                key="clear",
                text="Les explications étaient-elles claires ?",
                choices=[Choice(value="y", label="Oui"), Choice(value="n", label="Non")],
            )
        ],
    )
    machine.configure(schedule(), custom)
    answered_call(machine, service="msa")
    assert fx.timers[QUESTION_WARNING] + WARNING_S == 12
    assert fx.screens[-1][1]["steps"] == 1
    machine.released(SHORT)
    machine.released(LONG)
    [answer] = fx.surveys
    assert (answer.questionnaire_version, answer.answers, answer.service) == (
        4,
        {"clear": "n"},
        "msa",
    )


def test_a_link_loss_during_the_questionnaire_does_not_stop_it(
    machine: CallMachine, fx: Effects
) -> None:
    answered_call(machine)
    machine.link_lost()
    machine.released(LONG)
    machine.timer_fired(QUESTION)
    assert len(fx.surveys) == 1  # queued in the outbox; the fleet link sends it later
    machine.timer_fired(ENDED_SCREEN)
    assert machine.phase is Phase.OUT_OF_SERVICE


def test_unused_new_ids_are_not_reused_for_answers(fx: Effects, wall: WallClock) -> None:
    ids = iter([uuid.UUID(int=1), uuid.UUID(int=2)])
    m = CallMachine(fx, clock=Clock(), new_id=lambda: next(ids), wall_clock=wall)
    m.link_connected(WELCOME)
    m.configure(schedule(), default_questionnaire())
    m.pressed()
    call_id = m.call_id
    assert call_id == uuid.UUID(int=1)
    m.answered(sig.CallAnswered(call_id=call_id, agent_label="A"))
    m.ended_by_server(sig.CallEnded(call_id=call_id, reason="hangup_agent"))
    m.released(LONG)
    m.timer_fired(QUESTION)
    assert fx.surveys[0].id not in (uuid.UUID(int=1), uuid.UUID(int=2))


# --- the demo's remote finger: where a press landed, and leaving the questionnaire -----------


def test_the_summary_says_a_press_after_a_call_went_to_the_questionnaire(
    machine: CallMachine,
) -> None:
    """Issue 17: a press right after an answered call moved the questionnaire's answer and
    looked like nothing; the summary ``guichet demo press`` prints says so."""
    assert summary(machine) == "à l'accueil, prêt à appeler"
    machine.pressed()
    assert summary(machine) == "appel demandé au serveur (Caf)"
    answered_call(machine)
    machine.pressed()
    machine.released(SHORT)
    text = summary(machine)
    assert text.startswith(SURVEY_SUMMARY)
    assert "question 1 sur 3 « Votre demande a-t-elle été traitée ? »" in text
    assert "réponse en surbrillance « En partie »" in text
    assert "appui long : valider" in text


def test_every_phase_has_a_summary() -> None:
    assert set(PHASE_SUMMARIES) == set(Phase)


def test_skipping_the_questionnaire_sends_what_was_given_and_ends_it(
    machine: CallMachine, fx: Effects
) -> None:
    assert not machine.skip_survey()  # nothing on screen: nothing happens
    answered_call(machine)
    machine.released(LONG)  # "Oui"
    assert machine.skip_survey()
    assert machine.phase is Phase.ENDED
    assert QUESTION not in fx.timers
    assert QUESTION_WARNING not in fx.timers
    [answer] = fx.surveys
    assert answer.answers == {"dealt_with": "yes"}
    assert summary(machine) == "écran de fin d'appel"
    assert not machine.skip_survey()
