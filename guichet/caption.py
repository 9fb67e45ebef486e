"""The caption contract: text in the call, over a second WebRTC data channel between the
agent's browser and the counter. Both sides follow this module (``agent_caption.js`` mirrors
it); golden fixtures in ``tests/fixtures/caption/`` pin each message.

The browser creates one reliable, ordered data channel labelled ``texte`` in its offer,
beside ``documents``; the counter (aiortc) accepts it. Every frame is a JSON text message:

    browser → counter   line(id, text)      (the agent typed a line for the citizen…)
    counter → browser   shown(id, lines)    (…the screen now shows these lines)
    browser → counter   clear               (wipe the lines off the screen)
    counter → browser   shown(None, [])
    counter → browser   typed(id, text)     (the citizen typed a line on the counter's
                                             optional USB keyboard and pressed Enter)

``shown`` is the counter's acknowledgement: exactly the lines its screen draws (the last
``SHOWN_LINES``), so the agent sees what the citizen reads. The lines are for a deaf or
hard-of-hearing citizen, and ``typed`` carries the citizen's answer back (only during a
call, only when a keyboard is plugged into the counter). The lines cross peer to peer, over
DTLS, never through the fleet server; neither side stores or logs them, and the counter
forgets them when the call ends.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from guichet.errors import CaptionError as CaptionError  # re-exported
from guichet.messages import parse_json

CHANNEL_LABEL = "texte"
MAX_LINE_CHARS = 200  # a sentence or two; the screen wraps it
SHOWN_LINES = 3  # the screen shows the last this many lines, large
MAX_MESSAGE_BYTES = 4 * 1024  # a line (≤ 200 characters, ≤ 4 bytes each in UTF-8) in JSON
MAX_LINE_ID = 2**31 - 1  # a counter in the browser; JavaScript's integers are exact here

LineId = Annotated[int, Field(ge=0, le=MAX_LINE_ID)]
LineText = Annotated[str, Field(min_length=1, max_length=MAX_LINE_CHARS)]


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Line(_Msg):
    """browser → counter: one line the agent typed; blank lines are not sent."""

    type: Literal["line"] = "line"
    id: LineId
    text: LineText


class Clear(_Msg):
    """browser → counter: wipe the lines off the counter's screen."""

    type: Literal["clear"] = "clear"


class Shown(_Msg):
    """counter → browser: what the screen shows now, oldest first; ``id`` is the last line
    taken (None after ``clear``)."""

    type: Literal["shown"] = "shown"
    id: LineId | None = None
    lines: list[LineText] = Field(default_factory=list, max_length=SHOWN_LINES)


class Typed(_Msg):
    """counter → browser: one line the citizen typed on the counter's keyboard and sent with
    Enter; ``id`` counts the call's citizen lines from 0. Added after ``shown``: a console
    that does not know it ignores it, as it ignores every unknown type."""

    type: Literal["typed"] = "typed"
    id: LineId
    text: LineText


BrowserToCounter = Annotated[Line | Clear, Field(discriminator="type")]
CounterToBrowser = Annotated[Shown | Typed, Field(discriminator="type")]

_FROM_BROWSER: TypeAdapter[BrowserToCounter] = TypeAdapter(BrowserToCounter)
_TO_BROWSER: TypeAdapter[CounterToBrowser] = TypeAdapter(CounterToBrowser)


def _bad_message(reason: str) -> CaptionError:
    return CaptionError(reason)


def parse_from_browser(raw: str | bytes) -> BrowserToCounter:
    return parse_json(_FROM_BROWSER, raw, max_bytes=MAX_MESSAGE_BYTES, error=_bad_message)


def parse_to_browser(raw: str | bytes) -> CounterToBrowser:
    return parse_json(_TO_BROWSER, raw, max_bytes=MAX_MESSAGE_BYTES, error=_bad_message)


def dump(message: _Msg) -> str:
    return message.model_dump_json()
