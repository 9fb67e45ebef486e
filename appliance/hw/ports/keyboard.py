"""The counter's optional USB keyboard: what a key press is, and the port.

A citizen who cannot hear the agent types back during a call (issue 15, item 3). The
keyboard does nothing else: outside a call its keys are read and dropped. The adapter is
the screen's (``appliance.hw.screen_pygame.keyboard``): on the Pi, SDL's KMS/DRM driver
already reads every keyboard through evdev and turns keys into text with the console's
keymap (docs/decisions.md, « A USB keyboard at the counter »). No fake: the real adapter
runs here, on SDL's dummy driver, fed through SDL's own event queue.

A key event never holds more than one key's text, and no code logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class EditKey(StrEnum):
    """The keys that edit the line rather than type in it."""

    ENTER = "enter"  # send the line (Return or the keypad's Enter)
    BACKSPACE = "backspace"  # delete the last character
    ESCAPE = "escape"  # wipe the line being typed


@dataclass(frozen=True, slots=True)
class TextTyped:
    """Printable text from one key press (a letter, an accented letter, a space…)."""

    text: str

    def __repr__(self) -> str:  # what a citizen types is never printed, even by accident
        return f"TextTyped(<{len(self.text)} chars>)"


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """One of the editing keys."""

    key: EditKey


KeyEvent = TextTyped | KeyPressed


@runtime_checkable
class Keyboard(Protocol):
    """Key presses from a USB keyboard, if one is plugged in. The callback runs on the
    asyncio loop, never in the adapter's thread; ``when_key`` sets (replaces) it."""

    def when_key(self, callback: Callable[[KeyEvent], None]) -> None: ...
    def close(self) -> None: ...
