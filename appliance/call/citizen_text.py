"""The line a citizen types on the counter's USB keyboard during a call (pure).

Keys edit a draft of at most ``MAX_LINE_CHARS`` characters (typing past it does nothing);
Backspace deletes the last character, Escape wipes the draft, Enter hands the line over
(spaces trimmed; a blank line is not sent) and starts a new one. The draft lives in memory
only, for one call: never logged, never stored (``CaptionSession`` forgets it at the end).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.hw.ports.keyboard import EditKey, KeyEvent, KeyPressed, TextTyped
from guichet.caption import MAX_LINE_CHARS


@dataclass(frozen=True, slots=True)
class Typing:
    """What the counter's screen shows of the citizen's typing: the draft being typed and
    the last line sent to the agent (None before the first)."""

    draft: str
    sent: str | None = None

    def __repr__(self) -> str:  # never the citizen's words, even in a traceback
        return f"Typing(<{len(self.draft)} chars>, sent={self.sent is not None})"


class CitizenDraft:
    def __init__(self, max_chars: int = MAX_LINE_CHARS) -> None:
        self._max_chars = max_chars
        self._draft = ""
        self._sent: str | None = None

    @property
    def typing(self) -> Typing:
        return Typing(self._draft, self._sent)

    def key(self, event: KeyEvent) -> str | None:
        """Apply one key; returns the line to send when Enter completes one."""
        if isinstance(event, TextTyped):
            self._draft = (self._draft + event.text)[: self._max_chars]
            return None
        assert isinstance(event, KeyPressed)
        if event.key is EditKey.BACKSPACE:
            self._draft = self._draft[:-1]
        elif event.key is EditKey.ESCAPE:
            self._draft = ""
        elif event.key is EditKey.ENTER:
            line, self._draft = self._draft.strip(), ""
            if line:
                self._sent = line
                return line
        return None

    def forget(self) -> None:
        self._draft, self._sent = "", None
