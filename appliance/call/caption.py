"""Text in the call (``guichet/caption.py``): the counter's side.

One ``CaptionSession`` per call, fed by the ``texte`` channel the agent's browser opens.
Each line the agent types goes to the screen (``show``: the last ``SHOWN_LINES`` lines,
large, over the agent's video); the counter answers with what the screen now shows, so the
agent sees what the citizen reads. The lines live in memory only, for the call: never
logged, never stored; ``close()`` (call end) forgets them and clears the screen's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from guichet import caption as cap

logger = logging.getLogger(__name__)


class TextChannel(Protocol):
    """What the session needs of a data channel: aiortc's ``RTCDataChannel`` is one."""

    def send(self, data: str) -> None: ...


class CaptionSession:
    def __init__(self, channel: TextChannel, show: Callable[[list[str]], None]) -> None:
        self._channel = channel
        self._show = show
        self._lines: deque[str] = deque(maxlen=cap.SHOWN_LINES)
        self._closed = False

    @property
    def lines(self) -> list[str]:
        """What the screen shows now, oldest first."""
        return list(self._lines)

    def opened(self) -> None:
        """The channel is open: tell the console what the screen shows (nothing yet)."""
        self._send(cap.Shown(lines=self.lines))

    def received(self, data: str | bytes) -> None:
        if self._closed:
            return
        if isinstance(data, bytes):
            logger.warning("caption: binary frame ignored")
            return
        try:
            message = cap.parse_from_browser(data)
        except cap.CaptionError as exc:  # the reason names a field, never the text
            logger.warning("bad caption message: %s", exc)
            return
        if isinstance(message, cap.Line):
            self._lines.append(message.text)
            line_id: int | None = message.id
        else:
            self._lines.clear()
            line_id = None
        self._show(self.lines)
        self._send(cap.Shown(id=line_id, lines=self.lines))

    def close(self) -> None:
        """The call is over: forget the lines and take them off the screen."""
        if self._closed:
            return
        self._closed = True
        had_lines = bool(self._lines)
        self._lines.clear()
        if had_lines:
            self._show([])

    def _send(self, message: cap.Shown) -> None:
        if self._closed:
            return
        try:
            self._channel.send(cap.dump(message))
        except Exception as exc:  # aiortc raises InvalidStateError once the channel closed
            logger.debug("caption channel closed: %s", type(exc).__name__)
