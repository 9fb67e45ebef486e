"""The counter's USB keyboard through SDL (pygame), read by the screen's render thread.

Under KMS/DRM, SDL reads every keyboard itself (evdev, devices found and hot-plugged through
udev; the service's user is in the ``input`` group) and makes text with the console's keymap
and dead keys: a key gives a ``KEYDOWN`` and, when it types something, a ``TEXTINPUT``.
The render thread owns SDL's event queue; it hands the keys here, in order, and they reach
the loop through ``post_to_loop``. Why SDL and not python-evdev: docs/decisions.md.

pygame is imported only in the render thread: importing this module needs no pygame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from appliance.hw._bridge import post_to_loop
from appliance.hw.ports.keyboard import EditKey, KeyEvent, KeyPressed, TextTyped

if TYPE_CHECKING:
    import pygame

logger = logging.getLogger(__name__)

KeySink = Callable[[KeyEvent], None]


class KeySource(Protocol):
    """The screen adapter's side: it calls the sink in its render thread for each key."""

    def listen_keys(self, sink: KeySink | None) -> None: ...


def key_event(event: pygame.event.Event) -> KeyEvent | None:
    """One SDL event as a key of the port, or None (a key that neither types nor edits:
    Shift, arrows, F-keys… and every event that is not a key)."""
    import pygame

    if event.type == pygame.TEXTINPUT:
        text = "".join(ch for ch in event.text if ch.isprintable())
        return TextTyped(text) if text else None
    if event.type == pygame.KEYDOWN:
        key = {
            pygame.K_RETURN: EditKey.ENTER,
            pygame.K_KP_ENTER: EditKey.ENTER,
            pygame.K_BACKSPACE: EditKey.BACKSPACE,
            pygame.K_ESCAPE: EditKey.ESCAPE,
        }.get(event.key)
        return KeyPressed(key) if key is not None else None
    return None


class PygameKeyboard:
    """The ``Keyboard`` port on the pygame screen; callbacks run on ``loop``."""

    def __init__(self, screen: KeySource, *, loop: asyncio.AbstractEventLoop) -> None:
        self._screen = screen
        self._loop = loop
        self._callback: KeySink | None = None
        self._closed = False
        screen.listen_keys(self._from_render_thread)

    def when_key(self, callback: KeySink) -> None:
        self._callback = callback

    def close(self) -> None:
        self._closed = True
        self._screen.listen_keys(None)

    def _from_render_thread(self, event: KeyEvent) -> None:
        post_to_loop(self._loop, self._deliver, event)

    def _deliver(self, event: KeyEvent) -> None:
        if not self._closed and self._callback is not None:
            self._callback(event)
