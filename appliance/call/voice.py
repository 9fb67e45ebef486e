"""What the counter says aloud, screen by screen (issue 15: every screen spoken).

Pure, like the call machine that uses it. :func:`words` turns a screen — its state and
info, as the screen adapter gets them — into one French utterance built from the screen's
own words (``appliance/hw/screen_pygame/texts.py``: what is read and what is heard never
drift apart). :class:`Voice` remembers what was last said and decides, for each screen
shown, what to say now:

- a new screen: its whole text, cutting whatever was being said;
- the same CHOICE list with the highlight moved: the highlighted service alone;
- the same WAITING screen with a new place in the queue: the place and the wait alone (the
  first place the server gives says the whole screen again: it comes a moment after the
  request and would cut "Nous appelons un conseiller" short);
- the same screen again (the minute refresh, the waiting clock): nothing;
- a screen with nothing to say (IN_CALL: the call's audio has the loudspeaker): silence.

The questionnaire (SURVEY) reads itself aloud (``survey.py``); the voice stays out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.hw.ports import ScreenInfo, ScreenState
from appliance.hw.screen_pygame import texts

# What the voice does with a screen: say these words, fall silent (None), or leave alone.
KEEP = object()
Utterance = str | None


def sentence(*parts: str | None) -> str:
    """Parts joined into sentences: empty ones dropped, each ended by a full stop, the
    screen's ellipses read as plain stops."""
    said = []
    for part in parts:
        text = (part or "").replace("…", "").strip()
        if text:
            said.append(text if text[-1] in ".!?:" else f"{text}.")
    return " ".join(said)


def position_words(info: ScreenInfo) -> str:
    """WAITING: the place in the queue and the estimated wait, as the screen shows them."""
    return sentence(texts.queue_position(info.get("position")), texts.estimate(info))


def choice_item(info: ScreenInfo) -> str:
    """CHOICE: the highlighted service, with its button's number when it has one."""
    choices, selected = info.get("choices", []), info.get("selected", 0)
    if not choices:
        return ""
    label = choices[min(selected, len(choices) - 1)]
    return f"{selected + 1} : {label}" if selected < info.get("numbered", 0) else label


def _choice(info: ScreenInfo) -> str:
    choices = info.get("choices", [])
    numbered = info.get("numbered", 0)
    listed = [f"{n} : {label}" for n, label in enumerate(choices[:numbered], 1)] if numbered else []
    return sentence(
        texts.CHOOSE_SERVICE,
        texts.services_open(len(choices)),
        texts.SHORT_PRESS_NEXT,
        texts.LONG_PRESS_CALL,
        texts.NUMBERED_BUTTONS if numbered else None,
        *listed,
        choice_item(info),
    )


def _closed(info: ScreenInfo) -> str:
    lines = info.get("lines", [])
    phone = info.get("phone")
    return sentence(
        texts.CLOSED,
        texts.NEXT_OPENINGS if lines else texts.NO_OPENING_KNOWN,
        *lines,
        f"{texts.CALL_INSTEAD} {phone}" if phone else None,
    )


def _missed(info: ScreenInfo) -> str:
    opening, phone = info.get("next_opening"), info.get("phone")
    return sentence(
        texts.NOBODY,
        texts.reason_text(info["reason"]) if info.get("reason") else None,
        f"{texts.NEXT_OPENING} {opening}" if opening else None,
        f"{texts.CALL_INSTEAD} {phone}" if phone else None,
        texts.ASK_RECEPTION,
    )


def words(state: ScreenState, info: ScreenInfo) -> Utterance:
    """The whole screen in one utterance; None for a screen that says nothing aloud."""
    service = info.get("service")
    reason = texts.reason_text(info["reason"]) if info.get("reason") else None
    match state:
        case ScreenState.IDLE:
            return sentence(
                texts.WELCOME,
                f"{texts.CONNECTS_YOU_WITH} {service or texts.ANY_SERVICE}",
                texts.PRESS_TO_CALL,
            )
        case ScreenState.APPOINTMENT:
            return sentence(f"{texts.YOUR_APPOINTMENT} {service}", texts.PRESS_FOR_APPOINTMENT)
        case ScreenState.CHOICE:
            return _choice(info)
        case ScreenState.CLOSED:
            return _closed(info)
        case ScreenState.WAITING:
            return sentence(texts.CALLING, service, position_words(info), texts.STAY)
        case ScreenState.ENDED:
            return sentence(texts.THANKS, reason, texts.SEE_YOU)
        case ScreenState.MISSED:
            return _missed(info)
        case ScreenState.OUT_OF_SERVICE:
            return sentence(texts.UNAVAILABLE, reason, texts.TELL_RECEPTION)
        case _:  # IN_CALL (the call's own audio), SURVEY (reads itself), the technician's
            return None


def answered_words(info: ScreenInfo) -> str:
    """Said once when an agent answers, before the call's audio takes the loudspeaker."""
    return sentence(texts.ANSWERED, info.get("service"), texts.HANG_UP_HINT)


# The keys of each screen's info that its words depend on: another change (the time
# waited, ``more_time`` …) says nothing new.
_SPOKEN_KEYS = (
    "service", "reason", "next_opening", "phone", "choices", "numbered", "lines",
    "position", "estimated_wait_s",
)  # fmt: skip


def _heard(info: ScreenInfo) -> dict[str, object]:
    return {key: info.get(key) for key in _SPOKEN_KEYS}


@dataclass
class Voice:
    """What was last said, to say only what is new (see the module doc)."""

    _state: ScreenState | None = None
    _info: ScreenInfo | None = None
    _answered: bool = False

    def forget(self) -> None:
        """Whatever comes next is new (a screen not shown through the voice came between)."""
        self._state, self._info, self._answered = None, None, False

    def next(self, state: ScreenState, info: ScreenInfo, *, answered: bool = False) -> object:
        """What to say for this screen: words, None (silence) or ``KEEP`` (say nothing new).
        ``answered``: an agent answered and the media are coming (the WAITING screen stays)."""
        before, before_info = self._state, self._info
        self._state, self._info = state, info
        if answered:
            if self._answered:
                return KEEP
            self._answered = True
            return answered_words(info)
        self._answered = False
        if state is ScreenState.SURVEY:
            return KEEP
        if before is not state or before_info is None:
            return words(state, info)
        if _heard(before_info) == _heard(info) and (
            state is not ScreenState.CHOICE or before_info.get("selected") == info.get("selected")
        ):
            return KEEP
        if state is ScreenState.CHOICE and before_info.get("choices") == info.get("choices"):
            return choice_item(info)
        if (
            state is ScreenState.WAITING
            and before_info.get("service") == info.get("service")
            and before_info.get("position") is not None
        ):
            return position_words(info)
        return words(state, info)
