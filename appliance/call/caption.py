"""Text in the call (``guichet/caption.py``): the counter's side.

One ``CaptionSession`` per call, fed by the ``texte`` channel the agent's browser opens.
Each line the agent types goes to the screen (``show``: the last ``SHOWN_LINES`` lines,
large, over the agent's video); the counter answers with what the screen now shows, so the
agent sees what the citizen reads.

The other way, when a USB keyboard is plugged into the counter: ``key`` feeds the citizen's
keys to a draft (``citizen_text.py``) the screen shows as it is typed (``show_typing``);
Enter sends the line to the console (``typed``). The call agent calls ``key`` only while
the call is up: outside a call the keyboard does nothing.

Every line lives in memory only, for the call: never logged, never stored; ``close()`` (call
end) forgets them and clears the screen's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from appliance.call.citizen_text import CitizenDraft, Typing
from appliance.hw.ports.keyboard import KeyEvent
from guichet import caption as cap

logger = logging.getLogger(__name__)


class TextChannel(Protocol):
    """What the session needs of a data channel: aiortc's ``RTCDataChannel`` is one."""

    def send(self, data: str) -> None: ...


class CaptionSession:
    def __init__(
        self,
        channel: TextChannel,
        show: Callable[[list[str]], None],
        show_typing: Callable[[Typing | None], None] | None = None,
    ) -> None:
        self._channel = channel
        self._show = show
        self._show_typing = show_typing
        self._lines: deque[str] = deque(maxlen=cap.SHOWN_LINES)
        self._draft = CitizenDraft()
        self._typed = 0  # the citizen's lines sent this call: the next one's id
        self._open = False
        self._closed = False

    @property
    def lines(self) -> list[str]:
        """What the screen shows now, oldest first."""
        return list(self._lines)

    @property
    def typing(self) -> Typing:
        """What the citizen is typing, and the last line they sent."""
        return self._draft.typing

    def opened(self) -> None:
        """The channel is open: tell the console what the screen shows (nothing yet)."""
        self._open = True
        self._send(cap.Shown(lines=self.lines))

    def key(self, event: KeyEvent) -> None:
        """A key of the counter's keyboard, in the call: the draft on screen, and Enter
        sends the line. Ignored until the console's channel is open (nowhere to send)."""
        if self._closed or not self._open:
            return
        line = self._draft.key(event)
        if line is not None:
            self._send(cap.Typed(id=self._typed, text=line))
            self._typed = min(self._typed + 1, cap.MAX_LINE_ID)
        if self._show_typing is not None:
            self._show_typing(self._draft.typing)

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
        self._draft.forget()
        if had_lines:
            self._show([])
        if self._show_typing is not None:
            self._show_typing(None)

    def _send(self, message: cap.Shown | cap.Typed) -> None:
        if self._closed:
            return
        try:
            self._channel.send(cap.dump(message))
        except Exception as exc:  # aiortc raises InvalidStateError once the channel closed
            logger.debug("caption channel closed: %s", type(exc).__name__)
