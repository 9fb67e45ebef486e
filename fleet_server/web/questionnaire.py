"""The questionnaire editor (``/admin/questionnaire``): administrators only.

Every save is a new ``QuestionnaireVersion`` (the previous ones stay, listed as history, so
each stored answer keeps the wording it was given under); the highest version is the one the
counters ask, and it reaches them in their retained configuration at once. The form is plain
HTML: one block per question (key, text, kind, and for a choice question one answer per line
as ``value | label`` or, for the travel question, ``value | label | km``); a block with
neither key nor text is ignored. Validation is ``guichet.questionnaire.Questionnaire``'s own,
with its errors said in French.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet_server.models import QuestionnaireVersion
from fleet_server.mqtt import config_push
from fleet_server.security import audit
from fleet_server.security.auth import Principal
from fleet_server.web.deps import AdminUser, Ctx, Db, check_csrf, render
from guichet.contract import utcnow
from guichet.questionnaire import Questionnaire, default_questionnaire

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MAX_QUESTIONS = 10  # Questionnaire's own limit
FIELD_NAMES = {
    "key": "clé",
    "text": "texte",
    "kind": "type",
    "choices": "réponses",
    "value": "valeur",
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


def _choices(text: str, number: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (2, 3):
            raise QuestionnaireFormError(
                f"Question {number} : écrivez chaque réponse « valeur | libellé » "
                "ou « valeur | libellé | km »."
            )
        choice: dict[str, Any] = {"value": parts[0], "label": parts[1]}
        if len(parts) == 3 and parts[2]:
            if not parts[2].isdigit():
                raise QuestionnaireFormError(f"Question {number} : la distance est un nombre.")
            choice["km"] = int(parts[2])
        found.append(choice)
    return found


def parse_form(form: dict[str, str], version: int) -> Questionnaire:
    """The questionnaire the editor's form describes, validated, as ``version``."""
    questions: list[dict[str, Any]] = []
    for i in range(MAX_QUESTIONS):
        key, text = form.get(f"q{i}_key", "").strip(), form.get(f"q{i}_text", "").strip()
        if not key and not text:
            continue
        kind = form.get(f"q{i}_kind", "choice")
        question: dict[str, Any] = {"key": key, "text": text, "kind": kind}
        if kind == "choice":
            question["choices"] = _choices(form.get(f"q{i}_choices", ""), len(questions) + 1)
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
    """What the form's question blocks show: the submitted values, else the current ones."""
    blocks: list[dict[str, str]] = []
    for i in range(MAX_QUESTIONS):
        if form is not None:
            blocks.append(
                {k: form.get(f"q{i}_{k}", "") for k in ("key", "text", "kind", "choices")}
            )
            continue
        if i < len(questionnaire.questions):
            q = questionnaire.questions[i]
            lines = [
                f"{c.value} | {c.label}" + (f" | {c.km}" if c.km is not None else "")
                for c in q.choices
            ]
            blocks.append(
                {"key": q.key, "text": q.text, "kind": q.kind, "choices": "\n".join(lines)}
            )
        else:
            blocks.append({"key": "", "text": "", "kind": "choice", "choices": ""})
    return blocks


def _page(
    request: Request,
    db: Session,
    user: Principal,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    current = latest(db)
    context = {
        "section": "questionnaire",
        "current": current,
        "blocks": _blocks(current, form),
        "timeout_s": form.get("timeout_s", "") if form else str(current.timeout_s),
        "spoken": (form.get("spoken") in ("1", "on")) if form else current.spoken,
        "history": history(db),
        "error": error,
        "saved": request.query_params.get("fait") == "1",
    }
    code = status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK
    return render(request, "questionnaire.html", context, principal=user, status_code=code)


@router.get("/admin/questionnaire", response_class=HTMLResponse)
def questionnaire_page(request: Request, db: Db, user: AdminUser) -> Response:
    return _page(request, db, user)


@router.post("/admin/questionnaire", response_class=HTMLResponse)
async def save_questionnaire(request: Request, ctx: Ctx, user: AdminUser) -> Response:
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    check_csrf(request, form.get("csrf_token"))

    def save() -> int:
        with ctx.sessions.begin() as session:
            top = session.scalar(select(func.max(QuestionnaireVersion.version))) or 0
            questionnaire = parse_form(form, top + 1)
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
        with ctx.sessions() as db:
            return _page(request, db, user, form, str(exc))
    logger.info("questionnaire saved", extra={"version": version, "by": user.username})
    config_push.request_push(ctx, None)
    return RedirectResponse("/admin/questionnaire?fait=1", status.HTTP_303_SEE_OTHER)
