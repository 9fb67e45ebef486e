"""The call's state machine: button, server messages and media state in; effects out.

Pure: no I/O, no hardware, no asyncio. The driver (``agent.py``) feeds it inputs and
carries out its effects (``CallEffects`` in ``phases.py``, with the phases and timer names):
send a signalling message, set the light and the screen, publish a fleet event, start or
cancel a named timer, read the call's quality summary (for ``call_ended``), release
the media, queue answers, speak.

    out_of_service ⇄ idle → requesting → waiting → connecting → in_call → ended → idle
                                    (long press, missed, failure, agent hang-up) ↗
                                       answered call, questionnaire on: → survey → ended

What IDLE shows and what the button does there follow the counter's schedule (the retained
``config`` message; ``configure``), refreshed every minute: ``idle.py`` tells how.

After a call that was answered, the questionnaire (``survey.py``) takes the buttons; a
question left without a press for ``timeout_s`` abandons the rest. Answers given are sent
(``survey`` effect), then "Merci" (ENDED) and IDLE. No call starts during the questionnaire.

Every screen is also said aloud when ``speech`` is on (``voice.py`` decides what is new to
say; nothing is said while the call's media are up), and the timeouts a citizen reads
against offer more time in their last seconds (``more_time.py``).

A dropped signalling link or media path during a call starts the ``restore`` timer; the
link's return sends ``Resume`` (the citizen presses nothing); if both are not back when it
fires, the call ends with reason ``failed``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.call.idle import IdleState, current_route, idle_screen, is_choice, next_minute_s
from appliance.call.more_time import Countdown
from appliance.call.phases import (
    ACTIVE,
    CHOICE,
    CHOICE_WARNING,
    ENDED_SCREEN,
    LIGHT,
    MINUTE,
    MINUTE_MARGIN_S,
    OUT_OF_SERVICE,
    QUESTION,
    QUESTION_WARNING,
    REQUEST,
    RESTORE,
    RING,
    Call,
    CallEffects,
    CallTimings,
    Phase,
    call_event,
    call_screen,
    ended_screen,
)
from appliance.call.survey import Questioning, SurveyRun
from appliance.call.voice import KEEP, Voice
from appliance.hw.ports import OutOfServiceReason, ScreenInfo, ScreenState
from appliance.hw.screen_pygame import texts
from guichet import signalling as sig
from guichet.contract import EventKind
from guichet.questionnaire import Questionnaire
from guichet.schedule import CounterSchedule, Route

__all__ = ["CallMachine", "CallTimings", "Phase"]  # the last two live in phases.py

logger = logging.getLogger(__name__)


@dataclass
class CallMachine:
    effects: CallEffects
    timings: CallTimings = field(default_factory=CallTimings)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    new_id: Callable[[], uuid.UUID] = field(default=uuid.uuid4)
    phase: Phase = Phase.OUT_OF_SERVICE
    call: Call | None = None
    link_up: bool = False
    welcome: sig.Welcome | None = None
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    schedule: CounterSchedule | None = None  # None: the service ``welcome`` names
    questionnaire: Questionnaire | None = None  # None: no questionnaire after calls
    questioning: Questioning | None = None  # the questionnaire on screen (SURVEY)
    choice_buttons: int = 0  # extra buttons wired: button N chooses the N-th option
    speech: bool = False  # every screen said aloud (the counter's setting, or the fleet's)
    headset: bool = False  # plugged in: the call is heard there alone (the screen says so)
    _idle: IdleState = field(default_factory=IdleState, init=False)  # the screen, the list
    _voice: Voice = field(default_factory=Voice, init=False)
    _choice_wait: Countdown = field(init=False)  # the service list's timeout

    def __post_init__(self) -> None:
        timings = self.timings
        self._choice_wait = Countdown(
            CHOICE, CHOICE_WARNING, timings.choice_timeout_s, timings.more_time_warning_s
        )
        speech, self.speech = self.speech, False  # the start-up screen is not said: the
        self._show()  # link comes within a second (a lasting outage is, by its timer)
        self.speech = speech

    @property
    def call_id(self) -> uuid.UUID | None:
        return self.call.call_id if self.call is not None else None

    # --- inputs: the signalling link ------------------------------------------------

    def link_connected(self, welcome: sig.Welcome) -> None:
        self.link_up, self.welcome = True, welcome
        self.effects.cancel_timer(OUT_OF_SERVICE)
        call = self.call
        if call is not None and call.link_lost:
            call.link_lost = False
            if call.pending_hangup is not None:
                self.effects.send(sig.Hangup(call_id=call.call_id, reason=call.pending_hangup))
            else:
                logger.info("signalling back: resuming the call")
                self.effects.send(sig.Resume(call_id=call.call_id))
            self._check_restored()
        if self.phase is Phase.OUT_OF_SERVICE:
            self._enter(Phase.IDLE)
        elif self.phase is Phase.IDLE:
            self._show()  # the service the button calls may have changed

    def link_lost(self) -> None:
        self.link_up = False
        call = self.call
        if call is not None and self.phase in ACTIVE:
            call.link_lost = True
            logger.warning("signalling lost during a call; restoring")
            self.effects.start_timer(RESTORE, self.timings.restore_s)
        elif self.phase in (Phase.IDLE, Phase.ENDED):
            self.effects.start_timer(OUT_OF_SERVICE, self.timings.out_of_service_after_s)

    # --- inputs: the fleet's configuration ---------------------------------------------

    def configure(
        self,
        schedule: CounterSchedule | None,
        questionnaire: Questionnaire | None,
        speech: bool | None = None,
    ) -> None:
        """The schedule and questionnaire of the latest ``config`` (None: none); ``speech``:
        whether screens are said aloud (None: unchanged)."""
        self.schedule, self.questionnaire = schedule, questionnaire
        if speech is not None and speech != self.speech:
            self.speech = speech
            self._voice.forget()
            if not speech:
                self.effects.speak(None)
        if self.phase is Phase.IDLE:
            self._show_idle(refresh=True)

    def route(self) -> Route | None:
        """What the button does now by the schedule; None without a (current) schedule."""
        return current_route(self.schedule, self.wall_clock())

    # --- inputs: the button ---------------------------------------------------------------

    def pressed(self) -> None:
        if self.phase not in (Phase.IDLE, Phase.ENDED) or not self.link_up:
            return
        route = self.route()
        if is_choice(route):
            if self.phase is Phase.ENDED:  # this press only brings the list back
                self._back_to_list()
            else:
                self._idle.armed = True  # the release moves or chooses
            return
        self._request(route, None)

    def released(self, held_s: float) -> None:
        long = held_s >= self.timings.long_press_s
        if self.phase is Phase.SURVEY:
            if self.questioning is not None and self.questioning.press(long=long):
                self._finish_survey()
            return
        if self.phase is Phase.IDLE and self._idle.armed:
            self._idle.armed = False
            self._choice_press(long=long)
            return
        call = self.call
        if not long or call is None or self.phase not in ACTIVE:
            return
        reason: sig.EndReason = (
            sig.EndReason.HANGUP_COUNTER if call.answered else sig.EndReason.CANCELLED
        )
        if self.link_up:
            self.effects.send(sig.Hangup(call_id=call.call_id, reason=reason))
        else:
            call.pending_hangup = reason
        self._end(reason)

    def choice_pressed(self, option: int) -> None:
        """Extra choice button ``option`` (from 0): that service, or that answer, at once."""
        if option >= self.choice_buttons:
            return
        if self.phase is Phase.SURVEY:
            if self.questioning is not None and self.questioning.pick(option):
                self._finish_survey()
            return
        route = self.route()
        if self.phase not in (Phase.IDLE, Phase.ENDED) or not self.link_up or not is_choice(route):
            return
        assert route is not None  # is_choice says so
        if self.phase is Phase.ENDED:  # like the call button: this press brings the list back
            self._back_to_list()
        elif option < len(route.services):
            logger.info("service chosen by its button", extra={"service": route.services[option]})
            self._request(route, route.services[option])

    def skip_survey(self) -> bool:
        """Leave the questionnaire now, as its timeout would (the answers given are sent);
        False when none is on screen. The demo's ``skip_survey`` command."""
        if self.phase is not Phase.SURVEY:
            return False
        logger.info("questionnaire skipped")
        self._finish_survey()
        return True

    # --- inputs: server messages ------------------------------------------------------------

    def queued(self, message: sig.CallQueued) -> None:
        call = self._current(message.call_id)
        if call is None or self.phase not in (Phase.REQUESTING, Phase.WAITING):
            return
        call.position, call.estimated_wait_s = message.position, message.estimated_wait_s
        if self.phase is Phase.WAITING:  # the call's place in the queue changed
            self._show()
            return
        call.service, call.service_label = message.service, message.service_label
        self.effects.cancel_timer(REQUEST)
        ring_s = self.welcome.ring_timeout_s if self.welcome is not None else 0
        self.effects.start_timer(RING, ring_s + self.timings.ring_grace_s)
        self._enter(Phase.WAITING)

    def answered(self, message: sig.CallAnswered) -> None:
        call = self._current(message.call_id)
        if call is None or self.phase not in (Phase.REQUESTING, Phase.WAITING):
            return
        call.answered = True
        self.effects.cancel_timer(REQUEST)
        self.effects.cancel_timer(RING)
        self.effects.start_timer(RESTORE, self.timings.restore_s)  # media must come up
        self._enter(Phase.CONNECTING)

    def ended_by_server(self, message: sig.CallEnded) -> None:
        if self._current(message.call_id) is not None and self.phase in ACTIVE:
            self._end(message.reason)

    def refused(self, message: sig.Error) -> None:
        """An ``error`` answering our request (e.g. no service open): back to the welcome."""
        if self.phase is Phase.REQUESTING and self.call is not None:
            logger.warning("call request refused: %s", message.code)
            self._end(sig.EndReason.CANCELLED, refusal=message.message)

    # --- inputs: media ----------------------------------------------------------------------

    def media_connected(self) -> None:
        call = self.call
        if call is None or self.phase not in (Phase.CONNECTING, Phase.IN_CALL):
            return
        restored = call.media_lost
        call.media_lost = False
        if self.phase is Phase.CONNECTING:
            call.started_at = self.clock()
            self.effects.emit(EventKind.CALL_STARTED, call_event(call))
            self._enter(Phase.IN_CALL)
        state = "restored" if restored else "connected"
        self.effects.send(sig.MediaState(call_id=call.call_id, state=state))
        self._check_restored()

    def media_lost(self) -> None:
        call = self.call
        if call is None or self.phase is not Phase.IN_CALL or call.media_lost:
            return
        call.media_lost = True
        logger.warning("media path lost; waiting for the agent's ICE restart")
        self.effects.send(sig.MediaState(call_id=call.call_id, state="failed"))
        self.effects.start_timer(RESTORE, self.timings.restore_s)

    def media_refused(self, detail: str) -> None:
        """The offer could not be answered (no common codec…): the call cannot go on."""
        if self.call is not None and self.phase in ACTIVE:
            logger.error("media negotiation failed: %s", detail)
            self._hangup_and_end(sig.EndReason.FAILED)

    def headset_changed(self, plugged: bool) -> None:
        """A headset was plugged in or out: the call's screens say where it is heard."""
        self.headset = plugged
        if self.phase in ACTIVE:
            self._show()

    # --- inputs: timers ---------------------------------------------------------------------

    def timer_fired(self, name: str) -> None:
        if name == MINUTE:
            if self.phase is Phase.IDLE:
                self._show_idle(refresh=True)
        elif name == QUESTION:
            if self.phase is Phase.SURVEY:
                logger.info("questionnaire left unanswered: abandoned")
                self._finish_survey()
        elif name == QUESTION_WARNING:
            if self.phase is Phase.SURVEY and self.questioning is not None:
                self.questioning.warn()
        elif name in (CHOICE, CHOICE_WARNING):
            self._choice_timer(name)
        elif name == OUT_OF_SERVICE and not self.link_up and self.phase is Phase.IDLE:
            self._enter(Phase.OUT_OF_SERVICE)
        elif name == ENDED_SCREEN and self.phase is Phase.ENDED:
            self.call = None
            self._enter(Phase.IDLE if self.link_up else Phase.OUT_OF_SERVICE)
        elif self.call is None or self.phase not in ACTIVE:
            return
        elif name == RESTORE:
            logger.error("call not restored within %ss: ending it", self.timings.restore_s)
            self._hangup_and_end(sig.EndReason.FAILED)
        elif name == REQUEST:
            logger.error("call request not acknowledged within %ss", self.timings.request_s)
            self._hangup_and_end(sig.EndReason.FAILED)
        elif name == RING:
            logger.warning("no answer and no word from the server: giving up")
            self._hangup_and_end(sig.EndReason.MISSED, send_reason=sig.EndReason.CANCELLED)

    # --- internals: choosing, calling, the questionnaire ---------------------------------------

    def _request(self, route: Route | None, service: str | None) -> None:
        """Ask for a call; ``service``: the citizen's choice (else the server routes)."""
        self.effects.cancel_timer(ENDED_SCREEN)
        call = Call(call_id=self.new_id(), requested_at=self.clock())
        code = service or (route.services[0] if route is not None and route.services else None)
        if code is not None and self.schedule is not None:
            call.service, call.service_label = code, self.schedule.label(code)
        elif route is None and self.welcome is not None:
            call.service, call.service_label = self.welcome.service, self.welcome.service_label
        self.call = call
        self.effects.send(sig.CallRequest(call_id=call.call_id, service=service))
        self.effects.start_timer(REQUEST, self.timings.request_s)
        self._enter(Phase.REQUESTING)

    def _choice_press(self, *, long: bool) -> None:
        route = self.route()
        if route is None or not is_choice(route) or not self.link_up:
            self._show()  # the hours changed under the finger: show what is true now
            return
        if not long and self._choice_wait.warned:  # more time, and nothing else
            self._choice_wait.start(self.effects)
            self._show_idle(refresh=False)
            self._say(texts.MORE_TIME_GIVEN)
            return
        chosen = self._idle.release(route.services, long=long)
        if chosen is None:  # a short press: the highlight moved on
            self._choice_wait.start(self.effects)
            self._show_idle(refresh=False)
        else:
            logger.info("service chosen", extra={"service": chosen})
            self._request(route, chosen)

    def _choice_timer(self, name: str) -> None:
        """The service list's timeout: its warning (more time offered), then the list back
        at its first service for whoever comes next."""
        if self.phase is not Phase.IDLE or not is_choice(self.route()):
            self._choice_wait.stop(self.effects)
            return
        if name == CHOICE_WARNING:
            self._choice_wait.warn(self.effects)
            self._show_idle(refresh=False)
            self._say(texts.MORE_TIME_SPOKEN.format(seconds=self._choice_wait.left_s))
        else:
            logger.info("service list left: back to its first service")
            self._choice_wait.stop(self.effects)
            self._idle.selected = None
            self._voice.forget()  # whoever comes next hears the whole list
            self._show_idle(refresh=False)

    def _back_to_list(self) -> None:
        self.effects.cancel_timer(ENDED_SCREEN)
        self.call = None
        self._enter(Phase.IDLE)

    def _start_survey(self, call: Call, questionnaire: Questionnaire) -> None:
        run = SurveyRun(questionnaire, call.service)
        self.questioning = Questioning(
            self.effects,
            run,
            numbered=self.choice_buttons,
            timeout_s=self.timings.question_timeout_s,
            warning_s=self.timings.more_time_warning_s,
        )
        self._voice.forget()  # the questionnaire speaks for itself
        logger.info("call phase %s → %s", self.phase.value, Phase.SURVEY.value)
        self.phase = Phase.SURVEY
        self.effects.light(LIGHT[Phase.SURVEY])
        self.questioning.start()

    def _finish_survey(self) -> None:
        questioning, self.questioning = self.questioning, None
        self.effects.cancel_timer(QUESTION)
        self.effects.cancel_timer(QUESTION_WARNING)
        if questioning is not None:
            questioning.finish(self.wall_clock())  # sends the answers given, if any
        self._show_ended(ScreenState.ENDED, {})

    # --- internals ----------------------------------------------------------------------------

    def _current(self, call_id: uuid.UUID) -> Call | None:
        call = self.call
        if call is None or call.call_id != call_id:
            logger.debug("message for another call ignored")
            return None
        return call

    def _check_restored(self) -> None:
        call = self.call
        restored = call is not None and not call.link_lost and not call.media_lost
        if restored and self.phase is not Phase.CONNECTING:  # it keeps its media deadline
            self.effects.cancel_timer(RESTORE)

    def _hangup_and_end(
        self, reason: sig.EndReason, *, send_reason: sig.EndReason | None = None
    ) -> None:
        call = self.call
        if call is not None and self.link_up:
            self.effects.send(sig.Hangup(call_id=call.call_id, reason=send_reason or reason))
        self._end(reason)

    def _end(self, reason: sig.EndReason, *, refusal: str | None = None) -> None:
        call = self.call
        if call is None:
            return
        for name in (RESTORE, REQUEST, RING):
            self.effects.cancel_timer(name)
        quality = self.effects.call_quality() if call.started_at is not None else {}
        self.effects.release_media()
        duration = 0.0 if call.started_at is None else self.clock() - call.started_at
        data = quality | call_event(call, duration_s=round(duration, 1), reason=reason)
        self.effects.emit(EventKind.CALL_ENDED, data)
        logger.info("call ended (%s) after %.1f s", reason, duration)
        if call.answered and self.questionnaire is not None:
            self._start_survey(call, self.questionnaire)
            return
        self._show_ended(*ended_screen(call, reason, refusal))

    def _show_ended(self, state: ScreenState, info: ScreenInfo) -> None:
        self.phase = Phase.ENDED
        self.effects.light(LIGHT[Phase.ENDED])
        self._display(state, info)
        self.effects.start_timer(ENDED_SCREEN, self.timings.ended_screen_s)

    def _enter(self, phase: Phase) -> None:
        if phase is not self.phase:
            logger.info("call phase %s → %s", self.phase.value, phase.value)
        self.phase = phase
        self._idle.armed = False
        if phase is not Phase.IDLE:
            self._choice_wait.stop(self.effects)
        self._show()

    def _show(self) -> None:
        phase, call = self.phase, self.call
        self.effects.light(LIGHT[phase])
        if phase is Phase.OUT_OF_SERVICE:
            reason = OutOfServiceReason.FLEET_UNREACHABLE.value
            self._display(ScreenState.OUT_OF_SERVICE, {"reason": reason})
        elif phase is Phase.IDLE:
            self._show_idle(refresh=False)
        elif (
            call is not None
            and (shown := call_screen(phase, call, self.clock, headset=self.headset)) is not None
        ):
            self._display(*shown)

    def _display(self, state: ScreenState, info: ScreenInfo) -> None:
        """Show a screen and, with speech on, say what is new on it (``voice.py``); never
        while the call's media are up: entering the call silences the voice."""
        self.effects.screen(state, info)
        if not self.speech:
            return
        if self.phase is Phase.IN_CALL:
            self._voice.forget()
            self.effects.speak(None)
            return
        said = self._voice.next(state, info, answered=self.phase is Phase.CONNECTING)
        if said is not KEEP:
            self.effects.speak(said if isinstance(said, str) else None)

    def _say(self, text: str) -> None:
        if self.speech and self.phase is not Phase.IN_CALL:
            self.effects.speak(text)

    def _show_idle(self, *, refresh: bool) -> None:
        """The idle screen the schedule calls for now; ``refresh``: only if it changed."""
        shown = idle_screen(
            self.schedule,
            self.route(),
            self.welcome,
            highlighted=self._idle.selected,
            now=self.wall_clock(),
            numbered=self.choice_buttons,
        )
        if shown[0] is ScreenState.CHOICE and self._choice_wait.warned:
            shown[1]["more_time"] = self._choice_wait.left_s
        if self._idle.changed(shown) or not refresh:
            self._display(*shown)
        if self.schedule is not None:
            self.effects.start_timer(MINUTE, next_minute_s(self.wall_clock()) + MINUTE_MARGIN_S)
