"""Issue 15, items 1 and 2 at the machine's level (pure: inputs in, effects out): every
counter screen said aloud — its words, only what is new, silence once the call's media are
up — and more time offered where a timeout runs (the questionnaire, the service list)."""

from __future__ import annotations

import pytest

from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.phases import (
    CHOICE,
    CHOICE_WARNING,
    ENDED_SCREEN,
    MINUTE,
    OUT_OF_SERVICE,
    QUESTION,
    QUESTION_WARNING,
)
from appliance.config import parse_config
from appliance.errors import ConfigError
from appliance.hw.ports import ScreenState
from guichet import signalling as sig
from guichet.questionnaire import default_questionnaire
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import MONDAY, WallClock, at, schedule

SHORT, LONG = 0.2, 2.5
IDLE_WORDS = (
    "Bienvenue. Ce bouton vous met en relation avec Caf. Pour appeler, appuyez sur le bouton."
)


def make(
    fx: Effects, wall: WallClock, *, speech: bool = True, timings: CallTimings | None = None
) -> CallMachine:
    machine = CallMachine(
        fx,
        timings or CallTimings(long_press_s=2.0),
        clock=Clock(),
        new_id=lambda: CALL_ID,
        wall_clock=wall,
        speech=speech,
    )
    machine.link_connected(WELCOME)
    machine.configure(schedule(phone="32 30"), None)
    return machine


def queued(position: int | None, wait_s: int | None) -> sig.CallQueued:
    return sig.CallQueued(
        call_id=CALL_ID,
        service="caf",
        service_label="Caf",
        requested_at=MONDAY,
        position=position,
        estimated_wait_s=wait_s,
    )


@pytest.fixture
def fx() -> Effects:
    return Effects()


@pytest.fixture
def wall() -> WallClock:
    return WallClock(at(1, 9, 30))  # Tuesday 9:30: only Caf is open


# --- item 1: every screen spoken ----------------------------------------------------------------


def test_a_whole_call_is_said_screen_by_screen_and_falls_silent_for_the_call(
    fx: Effects, wall: WallClock
) -> None:
    machine = make(fx, wall)
    assert fx.spoken == [IDLE_WORDS]  # the start-up OUT_OF_SERVICE screen is not said
    machine.timer_fired(MINUTE)  # the minute's refresh: nothing new, nothing said
    assert fx.spoken == [IDLE_WORDS]

    machine.pressed()
    assert fx.spoken[-1] == (
        "Nous appelons un conseiller. Caf. Restez devant l’écran, un conseiller va vous répondre."
    )
    machine.queued(queued(3, 960))
    assert fx.screens[-1][1] | {"waited_s": 0} == {
        "service": "Caf",
        "waited_s": 0,
        "position": 3,
        "estimated_wait_s": 960,
    }
    assert fx.spoken[-1] == (  # the first place comes a moment later: the whole screen again
        "Nous appelons un conseiller. Caf. Vous êtes en position 3 dans la file d’attente. "
        "Attente estimée : environ 16 minutes. "
        "Restez devant l’écran, un conseiller va vous répondre."
    )
    machine.queued(queued(1, 0))  # the server's update: the calls ahead were answered
    assert machine.phase is Phase.WAITING
    assert fx.spoken[-1] == "Vous êtes le prochain."

    machine.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    assert fx.spoken[-1] == (
        "Un conseiller vous répond. Caf. Appui long sur le bouton pour raccrocher."
    )
    said_before_media = len(fx.spoken)
    machine.media_connected()
    assert fx.screens[-1][0] is ScreenState.IN_CALL
    assert fx.spoken[said_before_media:] == [None]  # cut: the call has the loudspeaker
    machine.media_lost()
    machine.media_connected()
    assert fx.spoken[said_before_media:] == [None]  # nothing over the call

    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="hangup_agent"))
    assert fx.spoken[-1] == "Merci, au revoir. Vous pouvez rappeler à tout moment avec le bouton."
    machine.timer_fired(ENDED_SCREEN)
    assert fx.spoken[-1] == IDLE_WORDS


def test_a_missed_call_says_what_to_do(fx: Effects, wall: WallClock) -> None:
    machine = make(fx, wall)
    machine.pressed()
    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="missed"))
    assert fx.screens[-1][0] is ScreenState.MISSED
    assert fx.spoken[-1] == (
        "Aucun conseiller n’est disponible pour le moment. Adressez-vous à l’accueil."
    )


def test_out_of_service_says_why_and_what_to_do(fx: Effects, wall: WallClock) -> None:
    machine = make(fx, wall)
    machine.link_lost()
    machine.timer_fired(OUT_OF_SERVICE)
    assert fx.spoken[-1] == (
        "Guichet momentanément indisponible. "
        "Le guichet n’arrive pas à joindre les services (réseau). "
        "Prévenez l’accueil de la mairie."
    )


def test_the_choice_list_is_said_then_each_service_as_the_highlight_moves(
    fx: Effects, wall: WallClock
) -> None:
    wall.now = at(1, 10, 15)  # Caf and MSA open
    machine = make(fx, wall)
    assert fx.spoken[-1] == (
        "Choisissez un service. 2 services répondent maintenant. "
        "Appui court : service suivant. Appui long : appeler ce service. Caf."
    )
    machine.pressed()
    machine.released(SHORT)
    assert fx.spoken[-1] == "MSA"
    machine.pressed()
    machine.released(SHORT)
    assert fx.spoken[-1] == "Caf"


def test_with_choice_buttons_the_numbers_are_said(fx: Effects) -> None:
    machine = CallMachine(
        fx, clock=Clock(), new_id=lambda: CALL_ID, wall_clock=WallClock(at(1, 10, 15)),
        speech=True, choice_buttons=2,
    )  # fmt: skip
    machine.link_connected(WELCOME)
    machine.configure(schedule(), None)
    assert "Ou appuyez sur le bouton du même numéro. 1 : Caf. 2 : MSA. 1 : Caf." in fx.spoken[-1]


def test_closed_says_the_next_openings_and_the_phone(fx: Effects, wall: WallClock) -> None:
    wall.now = at(1, 20)  # Tuesday evening
    make(fx, wall)
    said = fx.spoken[-1]
    assert said is not None
    assert said.startswith("Guichet fermé. Prochaines ouvertures : ")
    assert said.endswith("Vous pouvez aussi appeler le 32 30.")


def test_an_appointment_due_now_is_said(fx: Effects, wall: WallClock) -> None:
    wall.now = at(2, 10)  # Wednesday 10:00, the Carsat appointment
    make(fx, wall)
    assert fx.spoken[-1] == "Votre rendez-vous Carsat. Appuyez sur le bouton pour commencer."


def test_speech_off_says_nothing_and_turning_it_off_falls_silent(
    fx: Effects, wall: WallClock
) -> None:
    machine = make(fx, wall, speech=False)
    machine.pressed()
    machine.queued(queued(2, 480))
    assert fx.spoken == []
    machine.configure(schedule(), None, speech=True)  # e.g. the fleet turns it on
    machine.queued(queued(1, 0))
    assert fx.spoken == ["Nous appelons un conseiller. Caf. Vous êtes le prochain. "
                         "Restez devant l’écran, un conseiller va vous répondre."]  # fmt: skip
    machine.configure(schedule(), None, speech=False)
    assert fx.spoken[-1] is None


# --- item 2: more time --------------------------------------------------------------------------


def test_a_short_press_in_a_questions_last_seconds_gives_more_time(
    fx: Effects, wall: WallClock
) -> None:
    machine = make(fx, wall, speech=False)
    machine.configure(schedule(), default_questionnaire().model_copy(update={"spoken": True}))
    machine.pressed()
    machine.queued(queued(None, None))
    machine.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    machine.media_connected()
    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="hangup_agent"))
    assert machine.phase is Phase.SURVEY
    assert fx.timers[QUESTION_WARNING] == 20  # 30 s, the last 10 offering more time
    machine.released(SHORT)  # an ordinary short press: the next answer
    assert fx.screens[-1][1]["selected"] == 1
    assert "more_time" not in fx.screens[-1][1]

    machine.timer_fired(QUESTION_WARNING)
    state, info = fx.screens[-1]
    assert (state, info["more_time"], info["selected"]) == (ScreenState.SURVEY, 10, 1)
    assert fx.timers[QUESTION] == 10
    assert fx.spoken[-1] == (
        "Il vous reste 10 secondes. Pour avoir plus de temps, appuyez brièvement sur le bouton."
    )
    machine.released(SHORT)  # more time, and nothing else
    state, info = fx.screens[-1]
    assert (info["selected"], "more_time" in info) == (1, False)
    assert QUESTION not in fx.timers
    assert fx.timers[QUESTION_WARNING] == 20
    assert fx.spoken[-1] == "Vous avez plus de temps."
    assert machine.phase is Phase.SURVEY

    machine.timer_fired(QUESTION_WARNING)
    machine.released(LONG)  # a long press keeps its meaning: this answer is chosen
    assert fx.screens[-1][1]["step"] == 2
    machine.timer_fired(QUESTION_WARNING)
    machine.timer_fired(QUESTION)  # no press: abandoned, as before
    assert machine.phase is Phase.ENDED
    assert fx.surveys[-1].answers == {"dealt_with": "partly"}


def test_the_counter_sets_the_questions_timeout_and_the_warning(
    fx: Effects, wall: WallClock
) -> None:
    timings = CallTimings(question_timeout_s=90, more_time_warning_s=20)
    machine = make(fx, wall, speech=False, timings=timings)
    machine.configure(schedule(), default_questionnaire())
    machine.pressed()
    machine.answered(sig.CallAnswered(call_id=CALL_ID, agent_label="Conseillère"))
    machine.media_connected()
    machine.ended_by_server(sig.CallEnded(call_id=CALL_ID, reason="hangup_agent"))
    assert fx.timers[QUESTION_WARNING] == 70
    machine.timer_fired(QUESTION_WARNING)
    assert (fx.timers[QUESTION], fx.screens[-1][1]["more_time"]) == (20, 20)


def test_the_service_list_times_out_back_to_its_first_service_unless_more_time(
    fx: Effects, wall: WallClock
) -> None:
    wall.now = at(1, 10, 15)
    machine = make(fx, wall, timings=CallTimings(choice_timeout_s=30))
    assert CHOICE_WARNING not in fx.timers  # nothing moved yet: no timeout runs
    machine.pressed()
    machine.released(SHORT)
    assert fx.screens[-1][1]["selected"] == 1
    assert fx.timers[CHOICE_WARNING] == 20

    machine.timer_fired(CHOICE_WARNING)
    assert fx.screens[-1] == (
        ScreenState.CHOICE,
        {"choices": ["Caf", "MSA"], "selected": 1, "more_time": 10},
    )
    assert fx.spoken[-1] is not None
    assert fx.spoken[-1].startswith("Il vous reste 10 secondes.")
    machine.pressed()
    machine.released(SHORT)  # more time: MSA stays highlighted
    assert fx.screens[-1] == (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 1})
    assert fx.spoken[-1] == "Vous avez plus de temps."
    assert fx.timers[CHOICE_WARNING] == 20

    machine.timer_fired(CHOICE_WARNING)
    machine.timer_fired(CHOICE)  # nobody came back: the list starts afresh
    assert fx.screens[-1] == (ScreenState.CHOICE, {"choices": ["Caf", "MSA"], "selected": 0})
    assert fx.spoken[-1] is not None
    assert fx.spoken[-1].startswith("Choisissez un service.")
    assert CHOICE not in fx.timers
    assert CHOICE_WARNING not in fx.timers
    machine.pressed()
    machine.released(LONG)
    assert fx.sent[-1] == sig.CallRequest(call_id=CALL_ID, service="caf")


def test_calling_stops_the_lists_timeout(fx: Effects, wall: WallClock) -> None:
    wall.now = at(1, 10, 15)
    machine = make(fx, wall)
    machine.pressed()
    machine.released(SHORT)
    machine.pressed()
    machine.released(LONG)
    assert machine.phase is Phase.REQUESTING
    assert CHOICE_WARNING not in fx.timers
    assert CHOICE not in fx.timers


def test_the_accessibility_section_is_checked() -> None:
    base = '[device]\nid = "guichet-test"\nsite = "Test"\n'
    config = parse_config(
        base + "[accessibility]\nspeech = true\nspeech_volume_pct = 80\n"
        "choice_timeout_s = 120\nquestion_timeout_s = 90\nmore_time_warning_s = 15\n"
    )
    assert config.accessibility.speech
    assert config.accessibility.speech_volume_pct == 80
    with pytest.raises(ConfigError, match="speech_volume_pct"):
        parse_config(base + "[accessibility]\nspeech_volume_pct = 150\n")
    with pytest.raises(ConfigError, match="spech"):
        parse_config(base + "[accessibility]\nspech = true\n")
