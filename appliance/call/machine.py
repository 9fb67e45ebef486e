"""The call's state machine: button, server messages and media state in; effects out.

Pure: no I/O, no hardware, no asyncio. The driver (``agent.py``) feeds it inputs and
carries out its effects (``CallEffects``): send a signalling message, set the light and the
screen, publish a fleet event, start or cancel a named timer, release the media.

    out_of_service ⇄ idle → requesting → waiting → connecting → in_call → ended → idle
                                    (long press, missed, failure, agent hang-up) ↗

A dropped signalling link or media path during a call starts the ``restore`` timer; the
link's return sends ``Resume`` (the citizen presses nothing); if both are not back when it
fires, the call ends with reason ``failed``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from appliance.hw.ports import LightPattern, OutOfServiceReason, ScreenInfo, ScreenState
from guichet import signalling as sig
from guichet.contract import EventKind, Scalar

logger = logging.getLogger(__name__)


class Phase(StrEnum):
    OUT_OF_SERVICE = "out_of_service"
    IDLE = "idle"
    REQUESTING = "requesting"  # CallRequest sent, not yet queued
    WAITING = "waiting"  # queued for a service, ringing at its agents
    CONNECTING = "connecting"  # answered, media not yet up
    IN_CALL = "in_call"
    ENDED = "ended"  # "Merci" (or "missed") on screen for a moment


ACTIVE = frozenset({Phase.REQUESTING, Phase.WAITING, Phase.CONNECTING, Phase.IN_CALL})
LIGHT = {
    Phase.OUT_OF_SERVICE: LightPattern.FAULT,
    Phase.IDLE: LightPattern.IDLE,
    Phase.REQUESTING: LightPattern.WAITING,
    Phase.WAITING: LightPattern.WAITING,
    Phase.CONNECTING: LightPattern.WAITING,
    Phase.IN_CALL: LightPattern.IN_CALL,
    Phase.ENDED: LightPattern.OFF,
}

# Timer names (the driver keeps one per name; starting one replaces it).
RESTORE, REQUEST, RING, ENDED_SCREEN, OUT_OF_SERVICE = (
    "restore",
    "request",
    "ring",
    "ended_screen",
    "out_of_service",
)

FAILED_TEXT = "La communication a été coupée et n'a pas pu reprendre."


@dataclass(frozen=True, slots=True)
class CallTimings:
    long_press_s: float = 2.0
    restore_s: float = float(sig.RESUME_WINDOW_S)  # media or link back within this, or failed
    request_s: float = 10.0  # CallRequest unacknowledged this long: the server is not coping
    ring_grace_s: float = 15.0  # beyond the server's ring timeout, give up locally
    ended_screen_s: float = 6.0  # "Merci" stays this long before the welcome screen
    out_of_service_after_s: float = 10.0  # a blip of the link must not flash "hors service"


class CallEffects(Protocol):
    def send(self, message: sig.CounterToServer) -> None: ...
    def light(self, pattern: LightPattern) -> None: ...
    def screen(self, state: ScreenState, info: ScreenInfo) -> None: ...
    def emit(self, kind: EventKind, data: dict[str, Scalar]) -> None: ...
    def start_timer(self, name: str, delay_s: float) -> None: ...
    def cancel_timer(self, name: str) -> None: ...
    def release_media(self) -> None: ...


@dataclass
class _Call:
    call_id: uuid.UUID
    service: str | None = None
    service_label: str | None = None
    answered: bool = False
    requested_at: float = 0.0  # monotonic, for the waiting screen
    started_at: float | None = None  # media first connected (monotonic)
    link_lost: bool = False
    media_lost: bool = False
    pending_hangup: sig.EndReason | None = None  # to send once the link is back


@dataclass
class CallMachine:
    effects: CallEffects
    timings: CallTimings = field(default_factory=CallTimings)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    new_id: Callable[[], uuid.UUID] = field(default=uuid.uuid4)
    phase: Phase = Phase.OUT_OF_SERVICE
    call: _Call | None = None
    link_up: bool = False
    welcome: sig.Welcome | None = None

    def __post_init__(self) -> None:
        self._show()

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

    # --- inputs: the button ---------------------------------------------------------------

    def pressed(self) -> None:
        if self.phase not in (Phase.IDLE, Phase.ENDED) or not self.link_up:
            return
        self.effects.cancel_timer(ENDED_SCREEN)
        call = _Call(call_id=self.new_id(), requested_at=self.clock())
        if self.welcome is not None:
            call.service, call.service_label = self.welcome.service, self.welcome.service_label
        self.call = call
        self.effects.send(sig.CallRequest(call_id=call.call_id))
        self.effects.start_timer(REQUEST, self.timings.request_s)
        self._enter(Phase.REQUESTING)

    def released(self, held_s: float) -> None:
        call = self.call
        if held_s < self.timings.long_press_s or call is None or self.phase not in ACTIVE:
            return
        reason: sig.EndReason = "hangup_counter" if call.answered else "cancelled"
        if self.link_up:
            self.effects.send(sig.Hangup(call_id=call.call_id, reason=reason))
        else:
            call.pending_hangup = reason
        self._end(reason)

    # --- inputs: server messages ------------------------------------------------------------

    def queued(self, message: sig.CallQueued) -> None:
        call = self._current(message.call_id)
        if call is None or self.phase is not Phase.REQUESTING:
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
            self._end("cancelled", refusal=message.message)

    # --- inputs: media ----------------------------------------------------------------------

    def media_connected(self) -> None:
        call = self.call
        if call is None or self.phase not in (Phase.CONNECTING, Phase.IN_CALL):
            return
        restored = call.media_lost
        call.media_lost = False
        if self.phase is Phase.CONNECTING:
            call.started_at = self.clock()
            self.effects.emit(
                EventKind.CALL_STARTED,
                {"call_id": str(call.call_id), "service": call.service},
            )
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
            self._hangup_and_end("failed")

    # --- inputs: timers ---------------------------------------------------------------------

    def timer_fired(self, name: str) -> None:
        if name == OUT_OF_SERVICE and not self.link_up and self.phase is Phase.IDLE:
            self._enter(Phase.OUT_OF_SERVICE)
        elif name == ENDED_SCREEN and self.phase is Phase.ENDED:
            self.call = None
            self._enter(Phase.IDLE if self.link_up else Phase.OUT_OF_SERVICE)
        elif self.call is None or self.phase not in ACTIVE:
            return
        elif name == RESTORE:
            logger.error("call not restored within %ss: ending it", self.timings.restore_s)
            self._hangup_and_end("failed")
        elif name == REQUEST:
            logger.error("call request not acknowledged within %ss", self.timings.request_s)
            self._hangup_and_end("failed")
        elif name == RING:
            logger.warning("no answer and no word from the server: giving up")
            self._hangup_and_end("missed", send_reason="cancelled")

    # --- internals ----------------------------------------------------------------------------

    def _current(self, call_id: uuid.UUID) -> _Call | None:
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
        self.effects.release_media()
        duration = 0.0 if call.started_at is None else self.clock() - call.started_at
        self.effects.emit(
            EventKind.CALL_ENDED,
            {
                "call_id": str(call.call_id),
                "service": call.service,
                "duration_s": round(duration, 1),
                "reason": reason,
            },
        )
        logger.info("call ended (%s) after %.1f s", reason, duration)
        self.phase = Phase.ENDED
        self.effects.light(LIGHT[Phase.ENDED])
        if refusal is not None:  # e.g. nothing open now: the server's words, in French
            self.effects.screen(ScreenState.MISSED, self._service(call) | {"reason": refusal})
        elif reason == "missed":
            self.effects.screen(ScreenState.MISSED, self._service(call))
        elif reason == "failed":
            self.effects.screen(ScreenState.ENDED, {"reason": FAILED_TEXT})
        else:
            self.effects.screen(ScreenState.ENDED, {})
        self.effects.start_timer(ENDED_SCREEN, self.timings.ended_screen_s)

    def _enter(self, phase: Phase) -> None:
        if phase is not self.phase:
            logger.info("call phase %s → %s", self.phase.value, phase.value)
        self.phase = phase
        self._show()

    def _show(self) -> None:
        phase, call = self.phase, self.call
        self.effects.light(LIGHT[phase])
        if phase is Phase.OUT_OF_SERVICE:
            reason = OutOfServiceReason.FLEET_UNREACHABLE.value
            self.effects.screen(ScreenState.OUT_OF_SERVICE, {"reason": reason})
        elif phase is Phase.IDLE:
            label = self.welcome.service_label if self.welcome else None
            self.effects.screen(ScreenState.IDLE, {"service": label} if label else {})
        elif phase in (Phase.REQUESTING, Phase.WAITING, Phase.CONNECTING) and call is not None:
            waited = max(0.0, self.clock() - call.requested_at)
            self.effects.screen(ScreenState.WAITING, self._service(call) | {"waited_s": waited})
        elif phase is Phase.IN_CALL and call is not None:
            self.effects.screen(ScreenState.IN_CALL, self._service(call))

    @staticmethod
    def _service(call: _Call) -> ScreenInfo:
        return {"service": call.service_label} if call.service_label else {}
