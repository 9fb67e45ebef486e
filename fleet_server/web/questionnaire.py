"""The questionnaire editor (``/admin/questionnaire``): administrators only.

Every save is a new ``QuestionnaireVersion`` (the previous ones stay, listed as history, so
each stored answer keeps the wording it was given under); the highest version is the one the
counters ask, and it reaches them in their retained configuration at once.

The form is plain HTML and speaks the administrator's words, not the stored keys: one block
per current question and one empty block for a new one. Each block has the question's text,
what it is for (``USES``: one of the three questions the statistics read, or another question
with answers or five faces) and its answers, one per line — for the travel question, a
one-way distance in km after a ``|``. The keys and answer values the counters send are
derived here: the statistics' own keys and values (``yes``/``partly``/``no``, given by the
answers' order), a question's existing key, and otherwise a short form of its text. A block
left empty, or ticked "Retirer", is dropped. Validation is ``guichet.questionnaire``'s own,
with its errors said in French; a refused form comes back as typed (``deps.redirect_to``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet_server.models import QuestionnaireVersion
from fleet_server.mqtt import config_push
from fleet_server.security import audit
from fleet_server.web.deps import (
    AdminUser,
    Ctx,
    Db,
    SubmittedForm,
    check_csrf,
    redirect_to,
    render,
    take_flash,
)
from guichet.contract import utcnow
from guichet.questionnaire import (
    KEY_DEALT_WITH,
    KEY_SATISFACTION,
    KEY_TRAVEL,
    Question,
    Questionnaire,
    default_questionnaire,
)

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MAX_QUESTIONS = 10  # Questionnaire's own limit
PAGE, FORM = "/admin/questionnaire", "questionnaire"
MAX_CODE = 32  # Question.key's and Choice.value's own limit
OTHER_CHOICE, OTHER_FACES = "choice", "faces"
# The three questions the statistics read (guichet.questionnaire), by their French names.
STATISTICS = {
    KEY_DEALT_WITH: "Demande traitée ?",
    KEY_SATISFACTION: "Satisfaction",
    KEY_TRAVEL: "Déplacement évité",
}
# What a question is for, as the form offers it: one of those three, or another question.
USES = {
    KEY_DEALT_WITH: "Demande traitée ? (statistiques : oui, en partie, non)",
    KEY_SATISFACTION: "Satisfaction (statistiques : cinq visages)",
    KEY_TRAVEL: "Déplacement évité (statistiques : une distance par réponse)",
    OTHER_CHOICE: "Autre question, à réponses",
    OTHER_FACES: "Autre question, cinq visages",
}
DEALT_WITH_VALUES = ("yes", "partly", "no")  # the statistics' values, in the answers' order
FIELD_NAMES = {
    "text": "texte",
    "choices": "réponses",
    "label": "libellé",
    "km": "distance (km)",
    "timeout_s": "délai par question",
    "questions": "questions",
}


class QuestionnaireFormError(ValueError):
    """The form cannot be read as a questionnaire; the message is French."""


def latest(session: Session) -> Questionnaire:
    """The questionnaire the counters ask: the highest valid version (or the default)."""
    return config_push.latest_questionnaire(session) or default_questionnaire()


def history(session: Session) -> Sequence[QuestionnaireVersion]:
    return session.scalars(
        select(QuestionnaireVersion).order_by(QuestionnaireVersion.version.desc())
    ).all()


def code_of(text: str, taken: set[str]) -> str:
    """A short code from French text, unique among ``taken``: ``Oui, moins de 10 km`` →
    ``oui_moins_de_10_km`` (what a counter sends; the administrator never types it)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")[:MAX_CODE] or "reponse"
    code, n = base, 2
    while code in taken:
        suffix = f"_{n}"
        code, n = base[: MAX_CODE - len(suffix)] + suffix, n + 1
    return code


def _use_of(question: Question) -> str:
    if question.key in STATISTICS:
        return question.key
    return OTHER_FACES if question.kind == "faces" else OTHER_CHOICE


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _choices(use: str, text: str, number: int, before: Question | None) -> list[dict[str, Any]]:
    """The answers of question ``number`` from its lines, with their derived values."""
    lines = _lines(text)
    if use == KEY_DEALT_WITH:
        if len(lines) != len(DEALT_WITH_VALUES):
            raise QuestionnaireFormError(
                f"Question {number} : écrivez trois réponses, dans cet ordre : oui, en partie, non."
            )
        return [
            {"value": v, "label": label} for v, label in zip(DEALT_WITH_VALUES, lines, strict=True)
        ]
    known = {c.label: c.value for c in before.choices} if before else {}
    found: list[dict[str, Any]] = []
    taken: set[str] = set()
    for line in lines:
        label, _, km = (part.strip() for part in line.partition("|"))
        choice: dict[str, Any] = {"label": label}
        if use == KEY_TRAVEL:
            if not km.isdigit():
                raise QuestionnaireFormError(
                    f"Question {number} : écrivez chaque réponse « libellé | km »,"
                    " par exemple « Oui, moins de 10 km | 5 » (0 : ne se serait pas déplacé)."
                )
            choice["km"] = int(km)
        value = known.get(label)
        choice["value"] = value if value and value not in taken else code_of(label, taken)
        taken.add(choice["value"])
        found.append(choice)
    return found


def parse_form(
    form: dict[str, str], version: int, current: Questionnaire | None = None
) -> Questionnaire:
    """The questionnaire the editor's form describes, validated, as ``version``; the
    ``current`` one lends its answers' values to answers whose wording did not change."""
    before = {q.key: q for q in current.questions} if current else {}
    questions: list[dict[str, Any]] = []
    keys: set[str] = set()
    for i in range(MAX_QUESTIONS):
        text = form.get(f"q{i}_text", "").strip()
        if not text or form.get(f"q{i}_remove"):
            continue
        use = form.get(f"q{i}_use", OTHER_CHOICE)
        if use not in USES:
            raise QuestionnaireFormError(f"Question {len(questions) + 1} : usage inconnu.")
        if use in STATISTICS:
            if use in keys:
                raise QuestionnaireFormError(
                    f"Deux questions servent à « {STATISTICS[use]} » : gardez-en une."
                )
            key = use
        else:
            old = form.get(f"q{i}_key", "")
            reserved = keys | set(STATISTICS)
            key = old if old in before and old not in reserved else code_of(text, reserved)
        keys.add(key)
        faces = use in (KEY_SATISFACTION, OTHER_FACES)
        question: dict[str, Any] = {
            "key": key,
            "text": text,
            "kind": "faces" if faces else "choice",
        }
        if not faces:
            number = len(questions) + 1
            choices = form.get(f"q{i}_choices", "")
            question["choices"] = _choices(use, choices, number, before.get(key))
        questions.append(question)
    timeout = form.get("timeout_s", "").strip()
    if not timeout.isdigit():
        raise QuestionnaireFormError("Le délai par question est un nombre de secondes.")
    try:
        return Questionnaire(
            version=version,
            questions=questions,
            timeout_s=int(timeout),
            spoken=form.get("spoken") in ("1", "on"),
        )
    except ValidationError as exc:
        raise QuestionnaireFormError(french_error(exc)) from None


def french_error(exc: ValidationError) -> str:
    """The first validation error, in French, naming the question it concerns."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    where: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            where.append(f"{'réponse' if loc[i - 1] == 'choices' else 'question'} {part + 1}")
        elif part in FIELD_NAMES and part not in ("questions", "choices"):
            where.append(FIELD_NAMES[part])
    message = str(error.get("msg", ""))
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif error["type"] == "too_short" and loc == ["questions"]:
        message = "il faut au moins une question"
    elif error["type"] == "string_pattern_mismatch":
        message = "minuscules, chiffres et « _ » seulement"
    else:
        message = "valeur refusée (vide, trop longue ou hors limites)"
    prefix = ", ".join(where)
    return (
        f"{prefix[:1].upper()}{prefix[1:]} : {message}." if prefix else f"{message.capitalize()}."
    )


def _blocks(questionnaire: Questionnaire, form: dict[str, str] | None) -> list[dict[str, str]]:
    """What the form's question blocks show: the submitted values, else the current
    questions and one empty block for a new question."""
    fields = ("key", "text", "use", "choices", "remove")
    if form is not None:
        count = sum(1 for i in range(MAX_QUESTIONS) if f"q{i}_text" in form)
        return [{k: form.get(f"q{i}_{k}", "") for k in fields} for i in range(count)]
    blocks: list[dict[str, str]] = []
    for q in questionnaire.questions:
        use = _use_of(q)
        lines = [
            c.label + (f" | {c.km}" if use == KEY_TRAVEL and c.km is not None else "")
            for c in q.choices
        ]
        blocks.append(
            {"key": q.key, "text": q.text, "use": use, "choices": "\n".join(lines), "remove": ""}
        )
    if len(blocks) < MAX_QUESTIONS:
        blocks.append({"key": "", "text": "", "use": OTHER_CHOICE, "choices": "", "remove": ""})
    return blocks


@router.get("/admin/questionnaire", response_class=HTMLResponse)
def questionnaire_page(request: Request, db: Db, user: AdminUser) -> Response:
    current = latest(db)
    flash = take_flash(request)
    refused = flash.values if flash.form == FORM else None  # what was typed, to correct
    form = {name: found[0] for name, found in refused.items()} if refused else None
    context = {
        "section": "questionnaire",
        "flash": flash,
        "current": current,
        "blocks": _blocks(current, form),
        "uses": USES,
        "timeout_s": form.get("timeout_s", "") if form else str(current.timeout_s),
        "spoken": (form.get("spoken") in ("1", "on")) if form else current.spoken,
        "history": history(db),
    }
    return render(request, "questionnaire.html", context, principal=user)


@router.post("/admin/questionnaire", response_class=HTMLResponse)
async def save_questionnaire(
    request: Request, ctx: Ctx, user: AdminUser, typed: SubmittedForm
) -> Response:
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    check_csrf(request, form.get("csrf_token"))

    def save() -> int:
        with ctx.sessions.begin() as session:
            top = session.scalar(select(func.max(QuestionnaireVersion.version))) or 0
            questionnaire = parse_form(form, top + 1, latest(session))
            session.add(
                QuestionnaireVersion(
                    version=questionnaire.version,
                    questions=[q.model_dump(mode="json") for q in questionnaire.questions],
                    timeout_s=questionnaire.timeout_s,
                    spoken=questionnaire.spoken,
                    created_at=utcnow(),
                    created_by=user.username,
                )
            )
            audit.record(
                session, user.username, "questionnaire.save", f"version {questionnaire.version}",
                actor_user_id=user.user_id, questions=len(questionnaire.questions),
            )  # fmt: skip
            return questionnaire.version

    try:
        version = await asyncio.to_thread(save)
    except QuestionnaireFormError as exc:
        return redirect_to(request, PAGE, form=FORM, error=str(exc), values=typed)
    logger.info("questionnaire saved", extra={"version": version, "by": user.username})
    config_push.request_push(ctx, None)
    notice = f"Version {version} enregistrée ; les guichets la reçoivent."
    return redirect_to(request, PAGE, form=FORM, notice=notice, changed=str(version))
