"""The hardware ports: small interfaces the rest of the appliance talks to.

Each port has one adapter per library (``gpiozero_io.py``, ``cups_printer.py``, …) and,
where the real thing cannot run on a laptop, a simulated adapter (``simulated.py``).
Nothing here imports a hardware library. Every method that can block is ``async``; the
adapters run the blocking library call in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, Unpack, runtime_checkable

from guichet.contract import ButtonState, Peripheral, PrinterState, ScannerState

if TYPE_CHECKING:  # PyAV is the media currency of the call; only needed for type hints here
    import av
    from av.stream import Stream


class LightPattern(StrEnum):
    """What the call button's light says to the citizen."""

    OFF = "off"
    IDLE = "idle"  # steady on: press me
    WAITING = "waiting"  # slow blink: we are calling
    IN_CALL = "in_call"  # fast pulse: you are connected
    FAULT = "fault"  # short double blink: out of service


@runtime_checkable
class Button(Protocol):
    """The big call button. Callbacks run on the asyncio loop, never in a library thread.

    Each ``when_*`` call sets (replaces) that callback.
    """

    def when_pressed(self, callback: Callable[[], None]) -> None: ...
    def when_released(self, callback: Callable[[float], None]) -> None:
        """``callback(held_s)``: how long it was held, for long-press detection."""
        ...

    def state(self) -> ButtonState: ...
    def close(self) -> None: ...


@runtime_checkable
class Speaker(Protocol):
    """Spoken prompts (the questionnaire read aloud). Every method returns at once.

    One utterance at a time: ``say`` cuts whatever is being said; ``stop`` falls silent.
    """

    def say(self, text: str) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class StatusLight(Protocol):
    def show(self, pattern: LightPattern) -> None: ...
    @property
    def pattern(self) -> LightPattern: ...
    def close(self) -> None: ...


@runtime_checkable
class Printer(Protocol):
    async def state(self) -> PrinterState: ...


@runtime_checkable
class Scanner(Protocol):
    async def state(self) -> ScannerState: ...


@dataclass(frozen=True, slots=True)
class ScanSettings:
    resolution: int  # dpi: 150 or 300
    mode: str  # "color", "gray" or "lineart"
    source: str  # "flatbed" or "adf"


@dataclass(frozen=True, slots=True)
class ScannedPage:
    """One page as the scanner gave it: raw pixels, row by row, no padding.

    ``mode`` is Pillow's: "RGB" (3 bytes a pixel), "L" (1 byte) or "1" (1 bit, rows padded
    to whole bytes, 1 = white, as Pillow packs it).
    """

    width: int
    height: int
    mode: str
    dpi: int
    pixels: bytes


@runtime_checkable
class DocumentScanner(Protocol):
    """Scanning for the agent. Raises ``DocumentError`` (jam, cover open, no document…)."""

    async def has_feeder(self) -> bool: ...
    async def scan(
        self, settings: ScanSettings, on_page: Callable[[ScannedPage], None]
    ) -> list[ScannedPage]:
        """Scan one page (flatbed) or every page in the feeder; ``on_page`` runs on the loop
        after each page."""
        ...


@dataclass(frozen=True, slots=True)
class PrintJobStatus:
    state: Literal["queued", "printing", "done", "failed"]
    reason: str | None = None  # French, for the agent: "Plus de papier", "Imprimante éteinte"…


@runtime_checkable
class DocumentPrinter(Protocol):
    """Printing for the agent. ``submit`` raises ``DocumentError`` when the queue refuses."""

    async def submit(self, path: str, title: str) -> int: ...
    async def job_status(self, job_id: int) -> PrintJobStatus: ...
    async def cancel(self, job_id: int) -> None: ...


@runtime_checkable
class Camera(Protocol):
    """Presence and health of the camera (frames come with the call issue)."""

    async def state(self) -> Peripheral: ...


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """A USB device as the hot-plug layer sees it (no serial numbers: not needed)."""

    path: str  # sysfs path, stable while plugged
    vendor_id: str
    product_id: str
    product: str | None
    kind: str  # "printer", "scanner", "camera", "audio", "other"


class UsbChange(StrEnum):
    ADDED = "added"
    REMOVED = "removed"


@runtime_checkable
class HotPlug(Protocol):
    async def devices(self) -> list[UsbDevice]: ...
    def watch(self, callback: Callable[[UsbChange, UsbDevice], None]) -> None:
        """Call ``callback`` on the loop for each plug/unplug from now on.

        Where the platform gives no device events, this is logged and nothing is delivered.
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """What the system probes read: the non-peripheral part of telemetry."""

    uptime_s: float
    cpu_temperature_c: float | None
    throttled_raw: int | None
    load: tuple[float, float, float]
    memory_used_pct: float
    disk_used_pct: float
    disk_free_bytes: int
    interfaces: list[tuple[str, bool, list[str]]]  # (name, up, addresses)


@runtime_checkable
class SystemProbe(Protocol):
    async def snapshot(self) -> SystemSnapshot: ...


# --- the call's screen and media --------------------------------------------------------------


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
    reason: str  # OUT_OF_SERVICE: an OutOfServiceReason or a short French sentence;
    #              ENDED/MISSED: why, in French (e.g. "La communication a été coupée.")
    next_opening: str  # MISSED: "lundi 2 décembre à 9 h"
    phone: str  # MISSED, CLOSED: a number the citizen can call instead, "32 30"
    document: str  # IN_CALL: what to do with a document now ("Posez votre document…")
    choices: list[str]  # CHOICE: the open services' labels; SURVEY: the question's options
    selected: int  # CHOICE, SURVEY: the index of the highlighted entry of ``choices``
    lines: list[str]  # CLOSED: the next openings, "Caf : mardi 14 h"
    question: str  # SURVEY: the question's text
    faces: bool  # SURVEY: the options are the five faces (worst to best)
    step: int  # SURVEY: this question's number (from 1) …
    steps: int  # … out of this many
    numbered: int  # CHOICE, SURVEY: the first this many choices show their extra button's number


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
class FrameSource(Protocol):
    """The camera, for one call: ``open()``, then paced ``read()``s, then ``close()``.

    ``read()`` returns raw frames (aiortc encodes them) or, when ``encoded`` is true,
    H.264 Annex B packets that are sent without re-encoding. Timestamps (``pts`` and
    ``time_base``) follow the wall clock. A new source is built for each call.
    """

    @property
    def encoded(self) -> bool: ...
    async def open(self) -> None: ...
    async def read(self) -> av.VideoFrame | av.Packet[Stream]: ...
    def request_keyframe(self) -> None:
        """The far end lost pictures (PLI/FIR): make the next packet a keyframe, if possible."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    """The microphone, for one call; ``read()`` returns paced audio frames."""

    async def open(self) -> None: ...
    async def read(self) -> av.AudioFrame: ...
    async def close(self) -> None: ...


@runtime_checkable
class AudioSink(Protocol):
    """The loudspeaker, for one call; ``play()`` queues one decoded frame of the agent's voice."""

    async def open(self) -> None: ...
    async def play(self, frame: av.AudioFrame) -> None: ...
    async def close(self) -> None: ...


@runtime_checkable
class MediaDevices(Protocol):
    """Builds fresh media endpoints for each call, so nothing stays open between calls."""

    def camera(self) -> FrameSource: ...
    def microphone(self) -> AudioSource: ...
    def speaker(self) -> AudioSink: ...
