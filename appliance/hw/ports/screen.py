"""The big screen: its states, what each may say, the port and its fake (``SimulatedScreen``,
which records every state shown and counts the frames)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypedDict, Unpack, runtime_checkable

if TYPE_CHECKING:  # PyAV is the media currency of the call; only needed for type hints here
    import av


class ScreenState(StrEnum):
    """What the counter's screen shows (texts and layout belong to the screen adapter)."""

    IDLE = "idle"  # welcome, which service the button calls, "Appuyez sur le bouton"
    WAITING = "waiting"  # time waited, reassurance
    IN_CALL = "in_call"  # the agent's video full screen, small self-view
    ENDED = "ended"  # "Merci, au revoir"
    MISSED = "missed"  # nobody could answer: what is open next, what to do
    OUT_OF_SERVICE = "out_of_service"  # fleet unreachable or camera missing, what to do
    APPOINTMENT = "appointment"  # idle with an appointment due now: "Votre rendez-vous Caf"
    CHOICE = "choice"  # idle with several services open: the list, one highlighted
    CLOSED = "closed"  # idle with nothing open: the next openings and a phone number
    SURVEY = "survey"  # after a call: one question of the questionnaire, one option highlighted
    # For the technician, before the counter serves anyone:
    ENROLMENT = "enrolment"  # first start: asking to join, "En attente de l'accord du Pays", code
    ENROLMENT_REFUSED = "enrolment_refused"  # token or request refused: why, what to do


class OutOfServiceReason(StrEnum):
    """Known reasons; the screen words each one for the citizen (any other text is shown as is)."""

    FLEET_UNREACHABLE = "fleet_unreachable"
    CAMERA_MISSING = "camera_missing"
    AUDIO_MISSING = "audio_missing"
    MAINTENANCE = "maintenance"


class ScreenInfo(TypedDict, total=False):
    """What a state may say besides its fixed texts; every key is optional."""

    service: str  # the service the button calls: "Caf — Allocations familiales"
    waited_s: float  # WAITING: seconds already waited; the screen counts on from here
    position: int  # WAITING: the call's place in its service's queue (1: the next one)
    estimated_wait_s: int  # WAITING: the server's rough estimate of the wait, in seconds
    more_time: int  # SURVEY, CHOICE: seconds left before the timeout; a short press adds more
    reason: str  # OUT_OF_SERVICE: an OutOfServiceReason or a short French sentence;
    #              ENDED/MISSED: why, in French (e.g. "La communication a été coupée.")
    next_opening: str  # MISSED: "lundi 2 décembre à 9 h"
    phone: str  # MISSED, CLOSED: a number the citizen can call instead, "32 30"
    document: str  # IN_CALL: what to do with a document now ("Posez votre document…")
    caption: list[str]  # IN_CALL: the agent's last typed lines for the citizen, oldest first
    typing: str  # IN_CALL: what the citizen is typing on the USB keyboard (present, even
    #              empty: the input line is shown; only once a key was pressed in the call)
    typed: str  # IN_CALL: the last line the citizen sent the agent with Enter
    headset: bool  # WAITING, IN_CALL: a headset is plugged in, the call is heard there alone
    choices: list[str]  # CHOICE: the open services' labels; SURVEY: the question's options
    selected: int  # CHOICE, SURVEY: the index of the highlighted entry of ``choices``
    lines: list[str]  # CLOSED: the next openings, "Caf : mardi 14 h"
    question: str  # SURVEY: the question's text
    faces: bool  # SURVEY: the options are the five faces (worst to best)
    step: int  # SURVEY: this question's number (from 1) …
    steps: int  # … out of this many
    numbered: int  # CHOICE, SURVEY: the first this many choices show their extra button's number
    counter: str  # ENROLMENT: this counter's name, "Guichet 1 — Mairie de Saint-Exemple"
    code: str  # ENROLMENT: the request's short code, the one the dashboard shows beside it
    #            (ENROLMENT's ``reason``: what is happening now, when it is not waiting;
    #            ENROLMENT_REFUSED's: the French message, lines separated by "\n")


@runtime_checkable
class Screen(Protocol):
    """The big screen. Every method returns at once: the adapter renders in its own thread.

    ``show`` replaces the whole state (info not given is not shown); ``show_frame`` hands
    over the newest decoded frame of the agent's video (or, with ``self_view``, of the
    counter's own camera, shown small in a corner); frames are only shown in ``IN_CALL``
    and older ones are dropped when the screen is behind.
    """

    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None: ...
    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class ScreenCapture(Protocol):
    """A screen that can say what it shows as a PNG (remote support's screenshot).

    ``png`` blocks (call it through ``asyncio.to_thread``): it draws the current state and
    encodes it; if that state is in ``refuse`` — checked by the renderer itself, at the
    moment it draws — it raises ``ScreenshotRefusedError`` and takes no picture.
    """

    def png(self, *, refuse: frozenset[ScreenState]) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ShownState:
    """One ``Screen.show`` call, as ``SimulatedScreen`` recorded it."""

    state: ScreenState
    info: ScreenInfo


class SimulatedScreen:
    """Records what would be shown: every state (``history``) and how many frames came."""

    def __init__(self) -> None:
        self.history: list[ShownState] = []
        self.frames = 0
        self.self_frames = 0
        self.last_frame_size: tuple[int, int] | None = None
        self.closed = False

    @property
    def state(self) -> ScreenState | None:
        return self.history[-1].state if self.history else None

    @property
    def info(self) -> ScreenInfo:
        return self.history[-1].info if self.history else {}

    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None:
        if not self.closed:
            self.history.append(ShownState(ScreenState(state), info))

    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None:
        if self.closed or self.state != ScreenState.IN_CALL:
            return
        if self_view:
            self.self_frames += 1
        else:
            self.frames += 1
            self.last_frame_size = (frame.width, frame.height)

    def close(self) -> None:
        self.closed = True
