"""The call machine's vocabulary: its phases, timers and timings, the effects it asks for,
what the screen says around a call and what the fleet hears of it (``call_event``).

Pure, like the machine (``machine.py``) that uses it and the driver (``agent.py``) that carries
the effects out; split from the machine so that each reads on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from appliance.hw.ports import LightPattern, ScreenInfo, ScreenState
from guichet import signalling as sig
from guichet.contract import EventKind, Scalar, SurveyAnswer


class Phase(StrEnum):
    OUT_OF_SERVICE = "out_of_service"
    IDLE = "idle"
    REQUESTING = "requesting"  # CallRequest sent, not yet queued
    WAITING = "waiting"  # queued for a service, ringing at its agents
    CONNECTING = "connecting"  # answered, media not yet up
    IN_CALL = "in_call"
    ENDED = "ended"  # "Merci" (or "missed") on screen for a moment
    SURVEY = "survey"  # the questionnaire after an answered call


ACTIVE = frozenset({Phase.REQUESTING, Phase.WAITING, Phase.CONNECTING, Phase.IN_CALL})
LIGHT = {
    Phase.OUT_OF_SERVICE: LightPattern.FAULT,
    Phase.IDLE: LightPattern.IDLE,
    Phase.REQUESTING: LightPattern.WAITING,
    Phase.WAITING: LightPattern.WAITING,
    Phase.CONNECTING: LightPattern.WAITING,
    Phase.IN_CALL: LightPattern.IN_CALL,
    Phase.ENDED: LightPattern.OFF,
    Phase.SURVEY: LightPattern.IDLE,  # steady on: press me (to answer)
}

# Timer names (the driver keeps one per name; starting one replaces it).
RESTORE, REQUEST, RING, ENDED_SCREEN, OUT_OF_SERVICE = (
    "restore",
    "request",
    "ring",
    "ended_screen",
    "out_of_service",
)
MINUTE = "minute"  # the idle screen is re-decided just after each minute boundary
QUESTION = "question"  # a question of the questionnaire left unanswered this long: abandoned
CHOICE = "choice"  # the service list left this long after a press: back to its first service
# A timeout's last seconds, when the screen offers more time (``more_time.py``).
QUESTION_WARNING, CHOICE_WARNING = "question_warning", "choice_warning"
MINUTE_MARGIN_S = 0.2  # fire just after the boundary, never just before it

FAILED_TEXT = "La communication a été coupée et n'a pas pu reprendre."


@dataclass(frozen=True, slots=True)
class CallTimings:
    long_press_s: float = 2.0
    restore_s: float = float(sig.RESUME_WINDOW_S)  # media or link back within this, or failed
    request_s: float = 10.0  # CallRequest unacknowledged this long: the server is not coping
    ring_grace_s: float = 15.0  # beyond the server's ring timeout, give up locally
    ended_screen_s: float = 6.0  # "Merci" stays this long before the welcome screen
    out_of_service_after_s: float = 10.0  # a blip of the link must not flash "hors service"
    # Issue 15, more time: the service list's timeout once a press moved its highlight; each
    # question's (None: the questionnaire's own ``timeout_s``); and the last seconds of
    # either, when the screen says a short press gives more time.
    choice_timeout_s: float = 60.0
    question_timeout_s: float | None = None
    more_time_warning_s: float = 10.0


class CallEffects(Protocol):
    def send(self, message: sig.CounterToServer) -> None: ...
    def light(self, pattern: LightPattern) -> None: ...
    def screen(self, state: ScreenState, info: ScreenInfo) -> None: ...
    def emit(self, kind: EventKind, data: dict[str, Scalar]) -> None: ...
    def start_timer(self, name: str, delay_s: float) -> None: ...
    def cancel_timer(self, name: str) -> None: ...
    def release_media(self) -> None: ...
    def call_quality(self) -> dict[str, Scalar]:
        """The call's quality summary so far (``appliance/call/quality.py``); read just
        before ``release_media``; empty when nothing was measured."""
        ...

    def survey(self, answer: SurveyAnswer) -> None:
        """Queue the questionnaire's answers for the fleet (the persistent outbox)."""
        ...

    def speak(self, text: str | None) -> None:
        """Say ``text`` aloud, cutting what is being said; None: fall silent."""
        ...


@dataclass
class Call:
    """The call in progress (or just ended), as the machine knows it."""

    call_id: uuid.UUID
    service: str | None = None
    service_label: str | None = None
    answered: bool = False
    requested_at: float = 0.0  # monotonic, for the waiting screen
    position: int | None = None  # in the service's queue, as the server last said
    estimated_wait_s: int | None = None
    started_at: float | None = None  # media first connected (monotonic)
    link_lost: bool = False
    media_lost: bool = False
    pending_hangup: sig.EndReason | None = None  # to send once the link is back


def service_info(call: Call) -> ScreenInfo:
    """The call's service, for the screens that name it."""
    return {"service": call.service_label} if call.service_label else {}


def call_screen(
    phase: Phase, call: Call, clock: Callable[[], float], *, headset: bool = False
) -> tuple[ScreenState, ScreenInfo] | None:
    """What the screen says during a call: WAITING (and the time waited) until the media
    connect, then IN_CALL; None in the other phases. ``headset``: one is plugged in."""
    shown = _call_screen(phase, call, clock)
    if shown is not None and headset:
        shown[1]["headset"] = True
    return shown


def _call_screen(
    phase: Phase, call: Call, clock: Callable[[], float]
) -> tuple[ScreenState, ScreenInfo] | None:
    if phase in (Phase.REQUESTING, Phase.WAITING, Phase.CONNECTING):
        info = service_info(call) | {"waited_s": max(0.0, clock() - call.requested_at)}
        if call.position is not None:
            info["position"] = call.position
        if call.estimated_wait_s is not None:
            info["estimated_wait_s"] = call.estimated_wait_s
        return ScreenState.WAITING, info
    if phase is Phase.IN_CALL:
        return ScreenState.IN_CALL, service_info(call)
    return None


def ended_screen(
    call: Call, reason: sig.EndReason, refusal: str | None
) -> tuple[ScreenState, ScreenInfo]:
    """What the screen says once a call is over (no questionnaire)."""
    if refusal is not None:  # e.g. nothing open now: the server's words, in French
        return ScreenState.MISSED, service_info(call) | {"reason": refusal}
    if reason == sig.EndReason.MISSED:
        return ScreenState.MISSED, service_info(call)
    if reason == sig.EndReason.FAILED:
        return ScreenState.ENDED, {"reason": FAILED_TEXT}
    return ScreenState.ENDED, {}


def call_event(call: Call, **extra: Scalar) -> dict[str, Scalar]:
    """A call's fleet event data: its id and service, then ``extra``."""
    return {"call_id": str(call.call_id), "service": call.service, **extra}
