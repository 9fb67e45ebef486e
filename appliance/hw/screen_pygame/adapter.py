"""The counter's screen through SDL2 (pygame): KMS/DRM on the Pi, no desktop needed.

pygame blocks and is not thread-safe, so one thread owns it: it opens the display,
draws, and is the only one to touch a surface. The asyncio side calls ``show`` and
``show_frame``, which only put a command in a small queue and return. Frames are not
queued: each new one replaces the one waiting, so a slow screen shows the newest picture
and drops the rest. Drawing is capped at ``MAX_FPS`` and happens only when something
changed (a state, a frame, the waiting timer).

The same thread owns SDL's event queue, and so the USB keyboard's keys: it hands them, in
order, to the listener ``listen_keys`` sets (``keyboard.py``, the ``Keyboard`` port), and
drops them when none listens.

pygame and PyAV are imported in the render thread, so importing this module needs neither.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

from appliance.errors import HardwareError, ScreenshotRefusedError
from appliance.hw._bridge import short_error
from appliance.hw.ports import ScreenInfo, ScreenState
from appliance.hw.ports.keyboard import KeyEvent

if TYPE_CHECKING:
    import av
    import pygame

    from appliance.hw.screen_pygame.renderer import Renderer

logger = logging.getLogger(__name__)

MAX_FPS = 30  # the agent's video comes at ≤ 30 fps; drawing faster only heats the Pi
PUMP_S = 0.5  # SDL's event queue is pumped at least this often, even when nothing changes
KEYS_S = 0.05  # in a call with a keyboard listening, keys are read this often: no felt lag
START_TIMEOUT_S = 10.0  # opening KMS/DRM takes well under a second; a hang is a fault
STOP_TIMEOUT_S = 5.0
SCREENSHOT_TIMEOUT_S = 10.0
WINDOWLESS_SIZE = (1280, 720)  # dummy/offscreen drivers have no native mode to take
WINDOWLESS_DRIVERS = frozenset({"dummy", "offscreen"})


@dataclass(frozen=True, slots=True)
class _Show:
    state: ScreenState
    info: ScreenInfo
    at: float


@dataclass(slots=True)
class _Screenshot:
    path: Path | None  # None: PNG bytes in ``png``
    refuse: frozenset[ScreenState] = frozenset()
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    png: bytes = b""


def _import_pygame() -> None:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on stdout
    with warnings.catch_warnings():
        # Some pygame builds import pkg_resources, which warns about its own deprecation.
        warnings.filterwarnings("ignore", message=".*pkg_resources", category=DeprecationWarning)
        import pygame  # noqa: F401  (the import itself is the point)


class PygameScreen:
    """The ``Screen`` port on pygame; ``driver`` is SDL's video driver (``kmsdrm`` on a Pi).

    ``size`` None takes the display's own mode (fullscreen). Raises ``HardwareError`` if
    pygame is missing or the display cannot be opened.
    """

    def __init__(
        self, *, driver: str | None = "kmsdrm", size: tuple[int, int] | None = None
    ) -> None:
        self._driver = driver
        self._size = size
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._commands: deque[_Show | _Screenshot] = deque()
        self._frames: dict[bool, av.VideoFrame] = {}  # self_view → newest frame not yet taken
        self._posted_state: ScreenState | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self.frames_received = 0
        self.frames_dropped = 0
        self.draws = 0
        self._caption_drawn: list[tuple[str, tuple[int, int, int, int]]] = []
        self._typing_drawn: list[tuple[str, tuple[int, int, int, int]]] = []
        self._key_sink: Callable[[KeyEvent], None] | None = None
        self._thread = threading.Thread(target=self._run, name="screen", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.close()
            raise HardwareError(f"screen: the display did not open within {START_TIMEOUT_S} s")
        if self._failure is not None:
            self._thread.join(STOP_TIMEOUT_S)
            raise HardwareError(f"screen: {short_error(self._failure)}") from self._failure

    # --- the port: called from the asyncio loop, never blocks --------------------------------

    def show(self, state: ScreenState, **info: Unpack[ScreenInfo]) -> None:
        self._post(_Show(ScreenState(state), info, time.monotonic()))

    def show_frame(self, frame: av.VideoFrame, *, self_view: bool = False) -> None:
        with self._lock:
            if self._stopping:
                return
            self.frames_received += 1
            if self._frames.get(self_view) is not None:
                self.frames_dropped += 1
            self._frames[self_view] = frame
        self._wake.set()

    def listen_keys(self, sink: Callable[[KeyEvent], None] | None) -> None:
        """Hand each key to ``sink``, in the render thread (None: drop them)."""
        with self._lock:
            self._key_sink = sink

    def close(self) -> None:
        """Stop the render thread and close the display; safe to call twice."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                logger.error("screen thread did not stop within %s s", STOP_TIMEOUT_S)

    # --- for tests, the demo and the self-test ---------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def failure(self) -> BaseException | None:
        """Why the render thread died, if it did (tests assert it stays None)."""
        return self._failure

    @property
    def caption_drawn(self) -> list[tuple[str, tuple[int, int, int, int]]]:
        """The agent's typed lines as last drawn: each row and its (x, y, w, h) on screen."""
        with self._lock:
            return list(self._caption_drawn)

    @property
    def typing_drawn(self) -> list[tuple[str, tuple[int, int, int, int]]]:
        """The citizen's input line as last drawn (its visible end) and its (x, y, w, h)."""
        with self._lock:
            return list(self._typing_drawn)

    def screenshot(self, path: Path) -> None:
        """Draw the current state and save it as PNG; blocks until written (not for the loop)."""
        self._shoot(_Screenshot(path))

    def png(self, *, refuse: frozenset[ScreenState] = frozenset()) -> bytes:
        """The ``ScreenCapture`` port: the current state drawn, as PNG bytes; blocks (not for
        the loop). The render thread checks ``refuse`` against the state it draws."""
        shot = _Screenshot(None, refuse)
        self._shoot(shot)
        return shot.png

    def _shoot(self, shot: _Screenshot) -> None:
        self._post(shot)
        if not shot.done.wait(SCREENSHOT_TIMEOUT_S):
            raise HardwareError("screen: screenshot timed out (render thread stopped?)")
        if isinstance(shot.error, ScreenshotRefusedError):
            raise shot.error
        if shot.error is not None:
            raise HardwareError(f"screen: screenshot failed: {shot.error}") from shot.error

    # --- the render thread --------------------------------------------------------------------

    def _post(self, command: _Show | _Screenshot) -> None:
        with self._lock:
            stopped = self._stopping or not self._thread.is_alive()
            if not stopped:
                self._commands.append(command)
                if isinstance(command, _Show) and command.state != self._posted_state:
                    self._frames.clear()  # frames not yet drawn belong to the state left
                    self._posted_state = command.state
        if stopped:
            logger.debug("screen stopped, ignoring a %s", type(command).__name__)  # no text
            if isinstance(command, _Screenshot):
                command.error = HardwareError("screen stopped")
                command.done.set()
            return
        self._wake.set()

    def _run(self) -> None:
        try:
            renderer = self._open()
        except BaseException as exc:  # reported to the constructor, which raises it
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        import pygame

        try:
            self._loop(renderer)
        except Exception as exc:
            logger.exception("screen render thread failed")
            self._failure = exc
        finally:
            self._fail_pending()
            pygame.display.quit()
            pygame.font.quit()

    def _open(self) -> Renderer:
        _import_pygame()
        import pygame

        from appliance.hw.screen_pygame.renderer import Renderer

        if self._driver:
            os.environ["SDL_VIDEODRIVER"] = self._driver
        pygame.display.init()
        pygame.font.init()
        size = self._size or (WINDOWLESS_SIZE if self._driver in WINDOWLESS_DRIVERS else (0, 0))
        flags = 0 if self._driver in WINDOWLESS_DRIVERS else pygame.FULLSCREEN
        try:
            surface = pygame.display.set_mode(size, flags)
        except pygame.error:
            pygame.display.quit()
            raise
        pygame.display.set_caption("Guichet Proche")
        pygame.mouse.set_visible(False)
        pygame.key.start_text_input()  # SDL's default already; the keyboard relies on it
        logger.info(
            "screen open: driver %s, %dx%d", pygame.display.get_driver(), *surface.get_size()
        )
        return Renderer(surface)

    def _loop(self, renderer: Renderer) -> None:
        import pygame

        last_draw = 0.0
        while True:
            due = renderer.due_in(time.monotonic())
            pump = self._pump_s(renderer)
            self._wake.wait(pump if due is None else min(due, pump))
            # Cap the frame rate: frames arriving meanwhile replace each other in their slot.
            time.sleep(max(0.0, last_draw + 1 / MAX_FPS - time.monotonic()))
            with self._lock:
                self._wake.clear()
                if self._stopping:
                    return
                commands = list(self._commands)
                self._commands.clear()
                frames, self._frames = self._frames, {}
            shots = self._apply(renderer, commands, frames)
            self._read_keys()
            now = time.monotonic()
            if shots or renderer.due_in(now) == 0.0:
                renderer.draw(now)
                pygame.display.flip()
                self.draws += 1
                drawn = [(words, (r.x, r.y, r.w, r.h)) for words, r in renderer.caption_rows]
                typing = [(words, (r.x, r.y, r.w, r.h)) for words, r in renderer.typing_rows]
                with self._lock:
                    self._caption_drawn = drawn
                    self._typing_drawn = typing
                last_draw = now
            for shot in shots:
                if renderer.state in shot.refuse:  # the state drawn, not the one asked about
                    shot.error = ScreenshotRefusedError(renderer.state.value)
                    shot.done.set()
                else:
                    self._save(renderer.surface, shot)

    def _pump_s(self, renderer: Renderer) -> float:
        with self._lock:
            listening = self._key_sink is not None
        return KEYS_S if listening and renderer.state is ScreenState.IN_CALL else PUMP_S

    def _read_keys(self) -> None:
        """Take every event off SDL's queue; the keys go to the listener, in order (a typed
        filter would take all ``KEYDOWN``s before all ``TEXTINPUT``s)."""
        import pygame

        from appliance.hw.screen_pygame.keyboard import key_event

        events = pygame.event.get()
        with self._lock:
            sink = self._key_sink
        if sink is None:
            return
        for event in events:
            key = key_event(event)
            if key is not None:
                sink(key)

    def _apply(
        self,
        renderer: Renderer,
        commands: list[_Show | _Screenshot],
        frames: dict[bool, av.VideoFrame],
    ) -> list[_Screenshot]:
        shots: list[_Screenshot] = []
        for command in commands:
            if isinstance(command, _Show):
                renderer.show(command.state, command.info, command.at)
            else:
                shots.append(command)
        for self_view, frame in frames.items():
            renderer.frame(frame, self_view=self_view)
        return shots

    @staticmethod
    def _save(surface: pygame.Surface, shot: _Screenshot) -> None:
        import pygame

        try:
            if shot.path is not None:
                pygame.image.save(surface, str(shot.path))
            else:
                out = io.BytesIO()
                pygame.image.save(surface, out, "screen.png")  # the name hint picks PNG
                shot.png = out.getvalue()
        except (pygame.error, OSError) as exc:
            shot.error = exc
        shot.done.set()

    def _fail_pending(self) -> None:
        with self._lock:
            self._stopping = True
            pending = [c for c in self._commands if isinstance(c, _Screenshot)]
            self._commands.clear()
        for shot in pending:
            shot.error = HardwareError("screen stopped")
            shot.done.set()
