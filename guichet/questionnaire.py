"""The satisfaction questionnaire shown on the counter after a call. Pure and shared.

The administrator edits the questions on the fleet server; every saved edit is a new
``version`` and reaches the counters in their retained ``config`` message. The counter asks
the questions one at a time (short press moves, long press chooses) and sends the answers,
anonymous, as a ``survey`` message keyed by question ``key`` → chosen ``value``.

The statistics know three keys whatever the wording: ``dealt_with`` (values ``yes``,
``partly``, ``no``), ``satisfaction`` (``1``…``5``, five faces) and ``travel`` (a choice
whose ``km`` is the one-way distance the citizen would otherwise have travelled; 0 = would
not have travelled). Other questions are stored and exported as they are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KEY_DEALT_WITH, KEY_SATISFACTION, KEY_TRAVEL = "dealt_with", "satisfaction", "travel"


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    value: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")
    label: str = Field(min_length=1, max_length=64)
    km: int | None = Field(default=None, ge=0, le=1000)  # the travel question only


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    text: str = Field(min_length=1, max_length=200)
    kind: Literal["choice", "faces"] = "choice"  # faces: five faces, values "1"…"5"
    choices: list[Choice] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _faces_or_choices(self) -> Question:
        if self.kind == "choice" and len(self.choices) < 2:
            raise ValueError("une question à choix a au moins deux réponses")
        if len({c.value for c in self.choices}) != len(self.choices):
            raise ValueError("deux réponses ont la même valeur")
        return self

    def options(self) -> list[Choice]:
        """What the counter lists: the choices, or the five faces from worst to best."""
        if self.kind == "faces":
            return [Choice(value=str(n), label=FACES[n - 1]) for n in range(1, 6)]
        return list(self.choices)


FACES = ("Très mécontent", "Mécontent", "Moyen", "Content", "Très content")


class Questionnaire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = Field(ge=1)
    questions: list[Question] = Field(min_length=1, max_length=10)
    timeout_s: int = Field(default=30, ge=5, le=300)  # per question, without a press
    spoken: bool = False  # read the questions aloud where the counter can

    @model_validator(mode="after")
    def _unique_keys(self) -> Questionnaire:
        if len({q.key for q in self.questions}) != len(self.questions):
            raise ValueError("deux questions ont la même clé")
        return self


DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question(
        key=KEY_DEALT_WITH,
        text="Votre demande a-t-elle été traitée ?",
        choices=[
            Choice(value="yes", label="Oui"),
            Choice(value="partly", label="En partie"),
            Choice(value="no", label="Non"),
        ],
    ),
    Question(key=KEY_SATISFACTION, text="Êtes-vous satisfait de cet échange ?", kind="faces"),
    Question(
        key=KEY_TRAVEL,
        text="Sans ce guichet, vous seriez-vous déplacé ?",
        choices=[
            Choice(value="no", label="Non", km=0),
            Choice(value="lt10", label="Oui, moins de 10 km", km=5),
            Choice(value="10to30", label="Oui, de 10 à 30 km", km=20),
            Choice(value="gt30", label="Oui, plus de 30 km", km=45),
        ],
    ),
)


def default_questionnaire() -> Questionnaire:
    return Questionnaire(version=1, questions=list(DEFAULT_QUESTIONS))
