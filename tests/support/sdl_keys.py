"""Keys typed on the counter's USB keyboard, as SDL hands them to the screen's render thread.

On the Pi, SDL's KMS/DRM driver reads the keyboard (evdev) and queues, for each key, a
``KEYDOWN`` and — when the key types something — a ``TEXTINPUT``. SDL's dummy driver here
has no input devices, so the tests put the same events on SDL's own queue (``SDL_PushEvent``,
thread-safe); everything after it is the real adapter.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

SPECIAL = {"\n": pygame.K_RETURN, "\b": pygame.K_BACKSPACE, "\x1b": pygame.K_ESCAPE}


def type_keys(text: str) -> None:
    """Each character as a key press: ``\\n`` Enter, ``\\b`` Backspace, ``\\x1b`` Escape."""
    for char in text:
        key = SPECIAL.get(char)
        if key is not None:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode=""))
            continue
        code = ord(char.lower()) if char.isascii() else 0  # SDL's keycode: the unshifted key
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode=char))
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=char))


def press_arrow() -> None:
    """A key that neither types nor edits (it must change nothing)."""
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, mod=0, unicode=""))
