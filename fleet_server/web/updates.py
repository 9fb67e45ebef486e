"""The software updates' pages (docs/updates.md): ``/admin/versions`` (the releases, the
versions the fleet runs, the rollouts; an administrator uploads a release and starts a
rollout there) and ``/admin/rollouts/{id}`` (its waves, each counter's state, pause, resume
and cancel with a confirmation). Auditors read; administrators act. The rollout page's
script (``static/rollout.js``) reads ``/api/v1/rollouts/{id}`` every ``dashboard_refresh_s``
and updates each counter's state in place; without script the page shows it as loaded."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from fleet_server.errors import BundleError, RolloutError
from fleet_server.models import Release, RolloutRecord
from fleet_server.security.roles import Role
from fleet_server.updates import manage, releases
from fleet_server.updates.records import counter_rows
from fleet_server.updates.rollout import (
    ROLLOUT_ACTION_LABELS,
    ROLLOUT_STATE_LABELS,
    RolloutAction,
    RolloutState,
    Threshold,
)
from fleet_server.updates.views import counter_out
from fleet_server.updates.waves import MAX_CANARY
from fleet_server.web import rollout_form
from fleet_server.web.deps import (
    AdminUser,
    Ctx,
    DashboardUser,
    Db,
    SubmittedForm,
    redirect_to,
    render,
)
from fleet_server.web.flash import FormValues

router = APIRouter(include_in_schema=False)

PAGE = "/admin/versions"
CHUNK = 1024 * 1024


@router.get(PAGE, response_class=HTMLResponse)
def versions_page(request: Request, db: Db, user: DashboardUser) -> Response:
    rollouts = list(db.scalars(select(RolloutRecord).order_by(RolloutRecord.id.desc()).limit(50)))
    versions = {r.id: r.version for r in db.scalars(select(Release))}
    context = {
        "section": "versions",
        "releases": releases.all_releases(db),
        "in_use": releases.versions_in_use(db),
        "rollouts": rollouts,
        "versions": versions,
        "state_labels": ROLLOUT_STATE_LABELS,
        "max_mb": request.app.state.ctx.settings.release_max_mb,
    }
    if user.role == Role.ADMIN:  # the rollout form's choices
        counters = manage.choosable(db)
        context["counters"] = counters
        context["sites"] = sorted(Counter(c.site for c in counters if c.site).items())
        context["default_max_failures"] = Threshold().max_failures
        context["max_canary"] = MAX_CANARY
        context["max_failures"] = rollout_form.MAX_FAILURES
    return render(request, "versions.html", context, principal=user)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post(PAGE)
async def upload(request: Request, ctx: Ctx, user: AdminUser) -> Response:
    form = await request.form(max_files=1, max_fields=4)  # already parsed by the CSRF check
    try:  # the bundle was spooled to a temporary file: closed (removed) whatever happens
        bundle = form.get("bundle")
        if not isinstance(bundle, UploadFile):
            return redirect_to(request, PAGE, form="upload", error="Choisissez un fichier .raucb.")
        release = await releases.store(
            _chunks(bundle), ctx.sessions, ctx.settings,
            actor=user.username, actor_user_id=user.user_id,
        )  # fmt: skip
    except BundleError as exc:  # too large included
        return redirect_to(request, PAGE, form="upload", error=str(exc))
    finally:
        await form.close()
    notice = f"Version {release.version} déposée et vérifiée."
    return redirect_to(request, PAGE, form="upload", notice=notice)


@router.post("/admin/rollouts")
async def create_rollout(
    request: Request, ctx: Ctx, user: AdminUser, typed: SubmittedForm
) -> Response:
    """The « Lancer un déploiement » form (``rollout_form``): started at once, through the
    API's own ``manage.launch``; a refusal comes back to the form, filled in as typed."""
    posted = await request.form()  # already parsed by the CSRF check
    fields = {n: [v for v in posted.getlist(n) if isinstance(v, str)] for n in rollout_form.FIELDS}
    try:
        described = rollout_form.read(fields)
    except rollout_form.FormRefusedError as exc:
        return _refused(request, typed, str(exc), exc.about)
    plan = described.plan

    def run() -> int:
        with ctx.sessions.begin() as session:
            record = manage.launch(
                session, plan, start=True, actor=user.username, actor_user_id=user.user_id
            )
            return record.id

    try:
        rollout_id = await asyncio.to_thread(run)
    except RolloutError as exc:
        return _refused(request, typed, str(exc), described.about(exc))
    url = f"/admin/rollouts/{rollout_id}"  # its message next to the rollout's actions
    return redirect_to(request, url, form="actions", notice="Déploiement lancé.")


def _refused(request: Request, typed: FormValues, error: str, about: str) -> Response:
    """Back to the rollout form, filled in as typed, the field ``about`` marked."""
    url = f"{PAGE}#rollout-form"
    return redirect_to(request, url, form=rollout_form.FORM, error=error, values=typed, about=about)


@router.get("/admin/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(rollout_id: int, request: Request, db: Db, user: DashboardUser) -> Response:
    record = db.get(RolloutRecord, rollout_id)
    if record is None:
        raise HTTPException(404, "Déploiement inconnu.")
    release = db.get(Release, record.release_id)
    state = RolloutState(record.state)
    actions = [
        a
        for a, allowed in (
            (RolloutAction.PAUSE, state is RolloutState.RUNNING),
            (RolloutAction.RESUME, state in (RolloutState.PAUSED, RolloutState.STOPPED)),
            (
                RolloutAction.CANCEL,
                state not in (RolloutState.COMPLETED, RolloutState.CANCELLED),
            ),
        )
        if allowed
    ]
    context = {
        "section": "versions",
        "rollout": record,
        "release": release,
        "state_label": ROLLOUT_STATE_LABELS[state],
        "counters": [counter_out(r) for r in counter_rows(db, record.id)],
        "actions": actions,
        "action_labels": ROLLOUT_ACTION_LABELS,
    }
    return render(request, "rollout.html", context, principal=user)


@router.post("/admin/rollouts/{rollout_id}/action")
async def rollout_action(
    rollout_id: int,
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    action: Annotated[RolloutAction, Form()],
) -> Response:
    def run() -> None:
        with ctx.sessions.begin() as session:
            manage.perform(
                session, rollout_id, action, actor=user.username, actor_user_id=user.user_id
            )

    url = f"/admin/rollouts/{rollout_id}"
    try:
        await asyncio.to_thread(run)
    except RolloutError as exc:
        return redirect_to(request, url, form="actions", error=str(exc))
    return redirect_to(
        request, url, form="actions", notice=ROLLOUT_ACTION_LABELS[action] + " : fait."
    )
