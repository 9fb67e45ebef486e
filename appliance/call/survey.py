"""The questionnaire after a call, one question at a time, answered with the call button.

Pure, like the call machine that drives it. ``SurveyRun`` is the state: ``move`` on a short
press, ``choose`` on a long one, ``pick`` for an extra choice button; when ``done`` (every
question answered) or abandoned (a question's timeout), ``answer()`` builds the anonymous
``survey`` message — question key → chosen value, the questionnaire's version and the call's
service, nothing that points to the call, the agent or the citizen.

``Questioning`` puts it before the citizen through the machine's effects: the question on the
screen (options numbered when choice buttons are wired), its timeout, and — when the
questionnaire is ``spoken`` — the question and the highlighted option read aloud, each new
utterance cutting the previous one. Each question's timeout runs in two stages
(``more_time.py``): in its last seconds the screen (and the voice) offers more time, and a
short press then restarts it instead of moving the highlight.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from appliance.call.more_time import Countdown
from appliance.call.phases import QUESTION, QUESTION_WARNING, CallEffects
from appliance.hw.ports import ScreenInfo, ScreenState
from appliance.hw.screen_pygame import texts
from guichet.contract import Scalar, SurveyAnswer
from guichet.questionnaire import Choice, Question, Questionnaire

logger = logging.getLogger(__name__)


@dataclass
class SurveyRun:
    questionnaire: Questionnaire
    service: str | None  # the call's service code, for the statistics
    index: int = 0  # the question on screen
    selected: int = 0  # its highlighted option
    answers: dict[str, Scalar] = field(default_factory=dict)

    @property
    def question(self) -> Question:
        return self.questionnaire.questions[self.index]

    @property
    def done(self) -> bool:
        return self.index >= len(self.questionnaire.questions)

    def options(self) -> list[Choice]:
        return self.question.options()

    def move(self) -> None:
        """A short press: highlight the next option (after the last, the first again)."""
        if not self.done:
            self.selected = (self.selected + 1) % len(self.options())

    def choose(self) -> None:
        """A long press: keep the highlighted option and go to the next question."""
        if self.done:
            return
        self.answers[self.question.key] = self.options()[self.selected].value
        self.index += 1
        self.selected = 0

    def pick(self, option: int) -> bool:
        """An extra choice button: keep option ``option`` at once; False if there is none."""
        if self.done or not 0 <= option < len(self.options()):
            return False
        self.selected = option
        self.choose()
        return True

    def screen_info(self) -> ScreenInfo:
        question = self.question
        return {
            "question": question.text,
            "choices": [option.label for option in self.options()],
            "selected": self.selected,
            "faces": question.kind == "faces",
            "step": self.index + 1,
            "steps": len(self.questionnaire.questions),
        }

    def answer(self, answer_id: uuid.UUID, at: datetime) -> SurveyAnswer | None:
        """The message to send; None when nothing was answered (nothing is sent)."""
        if not self.answers:
            return None
        return SurveyAnswer(
            id=answer_id,
            at=at,
            questionnaire_version=self.questionnaire.version,
            answers=dict(self.answers),
            service=self.service,
        )


THANKS = "Merci."  # said when the questionnaire ends, cutting the last option read


@dataclass
class Questioning:
    """The questionnaire on screen (and aloud), answered with the call and choice buttons."""

    effects: CallEffects
    run: SurveyRun
    numbered: int = 0  # the first options an extra choice button chooses (buttons wired)
    timeout_s: float | None = None  # each question's; None: the questionnaire's own
    warning_s: float = 10.0  # the timeout's last seconds, when more time is offered
    countdown: Countdown = field(init=False)

    def __post_init__(self) -> None:
        timeout_s = self.timeout_s or self.run.questionnaire.timeout_s
        self.countdown = Countdown(QUESTION, QUESTION_WARNING, timeout_s, self.warning_s)

    @property
    def spoken(self) -> bool:
        return self.run.questionnaire.spoken

    def start(self) -> None:
        self._show(new_question=True)

    def press(self, *, long: bool) -> bool:
        """The call button released: a short press moves, a long one chooses; True: done.
        While more time is offered, a short press gives it and does nothing else."""
        if not long and self.countdown.warned:
            self._show(new_question=False, spoken=texts.MORE_TIME_GIVEN)
            return False
        if long:
            self.run.choose()
        else:
            self.run.move()
        return self._next(new_question=long)

    def warn(self) -> None:
        """The question's timeout is near: offer more time (the QUESTION_WARNING timer)."""
        self.countdown.warn(self.effects)
        info = self._info()
        info["more_time"] = self.countdown.left_s
        self.effects.screen(ScreenState.SURVEY, info)
        if self.spoken:
            self.effects.speak(texts.MORE_TIME_SPOKEN.format(seconds=self.countdown.left_s))

    def pick(self, option: int) -> bool:
        """Extra choice button ``option`` (from 0) chooses that option; True: done."""
        if option >= self.numbered or not self.run.pick(option):
            return False
        return self._next(new_question=True)

    def finish(self, at: datetime) -> None:
        """Ended or abandoned: send the answers given, if any (a fresh id: nothing leads to
        the call)."""
        self.countdown.stop(self.effects)
        if self.spoken:
            self.effects.speak(THANKS)
        answer = self.run.answer(uuid.uuid4(), at)
        if answer is not None:
            logger.info("questionnaire answered", extra={"answered": len(answer.answers)})
            self.effects.survey(answer)

    def _next(self, *, new_question: bool) -> bool:
        if self.run.done:
            return True
        self._show(new_question=new_question)
        return False

    def _info(self) -> ScreenInfo:
        info = self.run.screen_info()
        if self.numbered:
            info["numbered"] = self.numbered
        return info

    def _show(self, *, new_question: bool, spoken: str | None = None) -> None:
        self.effects.screen(ScreenState.SURVEY, self._info())
        self.countdown.start(self.effects)
        if self.spoken:
            self.effects.speak(spoken or self._words(new_question=new_question))

    def _words(self, *, new_question: bool) -> str:
        """The question and its options (numbered ones by number) or the highlighted one."""
        options = [option.label for option in self.run.options()]
        highlighted = options[self.run.selected]
        if not new_question:
            return highlighted
        if self.numbered:
            listed = [f"{n} : {label}." for n, label in enumerate(options[: self.numbered], 1)]
            return " ".join([self.run.question.text, *listed])
        return f"{self.run.question.text} {highlighted}"
