"""The questionnaire after a call, one question at a time, answered with the call button.

Pure, like the call machine that drives it. ``SurveyRun`` is the state: ``move`` on a short
press, ``choose`` on a long one, ``pick`` for an extra choice button; when ``done`` (every
question answered) or abandoned (a question's timeout), ``answer()`` builds the anonymous
``survey`` message — question key → chosen value, the questionnaire's version and the call's
service, nothing that points to the call, the agent or the citizen.

``Questioning`` puts it before the citizen through the machine's effects: the question on the
screen (options numbered when choice buttons are wired), its timeout, and — when the
questionnaire is ``spoken`` — the question and the highlighted option read aloud, each new
utterance cutting the previous one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from appliance.call.phases import QUESTION, CallEffects
from appliance.hw.ports import ScreenInfo, ScreenState
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

    @property
    def spoken(self) -> bool:
        return self.run.questionnaire.spoken

    def start(self) -> None:
        self._show(new_question=True)

    def press(self, *, long: bool) -> bool:
        """The call button released: a short press moves, a long one chooses; True: done."""
        if long:
            self.run.choose()
        else:
            self.run.move()
        return self._next(new_question=long)

    def pick(self, option: int) -> bool:
        """Extra choice button ``option`` (from 0) chooses that option; True: done."""
        if option >= self.numbered or not self.run.pick(option):
            return False
        return self._next(new_question=True)

    def finish(self, at: datetime) -> None:
        """Ended or abandoned: send the answers given, if any (a fresh id: nothing leads to
        the call)."""
        self.effects.cancel_timer(QUESTION)
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

    def _show(self, *, new_question: bool) -> None:
        run = self.run
        info = run.screen_info()
        if self.numbered:
            info["numbered"] = self.numbered
        self.effects.screen(ScreenState.SURVEY, info)
        self.effects.start_timer(QUESTION, run.questionnaire.timeout_s)
        if self.spoken:
            self.effects.speak(self._words(new_question=new_question))

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
