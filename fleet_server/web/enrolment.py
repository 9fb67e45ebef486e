"""Administrators' enrolment page (``/admin/enrolment``): tokens, pending counters, enrolled
counters; and a counter's revocation (decommissioning). Every act is in the audit log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from fleet_server.models import CommandRecord, EnrolmentToken
from fleet_server.mqtt.publisher import CommandNotSentError
from fleet_server.security import audit, enrolment
from fleet_server.web import paging
from fleet_server.web.deps import AdminUser, AppContext, Ctx, Db, SubmittedForm, redirect_to, render
from fleet_server.web.signalling_ws import CLOSE_UNAUTHORIZED
from guichet import contract
from guichet.contract import utcnow
from guichet.enrolment_code import code_from_digest

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

ROTATE_COMMAND = "rotate_credentials"  # args: {"poll": the poll secret to collect with}


async def sync_broker(ctx: AppContext) -> None:
    """Regenerate Mosquitto's files from the database and reload it (if managed here)."""
    broker = ctx.broker
    if broker is None:
        return

    def run() -> None:
        with ctx.sessions() as session:
            broker.sync(session)

    await asyncio.to_thread(run)


def _page(request: Request, db: Db, user: AdminUser, *, token: str | None = None) -> Response:
    pending = enrolment.pending(db)
    search = paging.text(request, "guichet")
    enrolled, links = paging.fetch(
        request,
        "/admin/enrolment",
        {"guichet": search},
        lambda after, before: enrolment.enrolled_page(db, search, after=after, before=before),
    )
    context = {
        "section": "enrolment",
        "tokens": db.scalars(
            select(EnrolmentToken).order_by(EnrolmentToken.created_at.desc()).limit(50)
        ).all(),
        "pending": pending,
        # The code the waiting counter shows on its screen (from its poll secret's hash).
        "codes": {r.id: code_from_digest(r.poll_sha256) for r in pending},
        "enrolled": enrolled,
        "enrolled_links": links,
        "enrolled_search": search,
        "new_token": token,
        "site_url": str(request.base_url).rstrip("/"),  # as this page was reached
        "now": utcnow(),
    }
    response = render(request, "enrolment.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/admin/enrolment", response_class=HTMLResponse)
def enrolment_page(request: Request, db: Db, user: AdminUser) -> Response:
    return _page(request, db, user)


@router.post("/admin/enrolment/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    site: Annotated[str, Form(max_length=128)],
    valid_hours: Annotated[int, Form()] = 48,
    max_uses: Annotated[int, Form()] = 1,
    pre_approved: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        token = enrolment.create_token(
            db,
            site=site,
            valid_hours=valid_hours,
            max_uses=max_uses,
            pre_approved=pre_approved == "1",
            actor=user.username,
            actor_user_id=user.user_id,
        )
    except enrolment.EnrolmentError as exc:
        db.rollback()
        url = "/admin/enrolment#nouveau-jeton"
        return redirect_to(request, url, form="token", error=str(exc), values=typed)
    db.commit()
    return _page(request, db, user, token=token)  # shown once: a secret is never flashed


@router.post("/admin/enrolment/tokens/{token_id}/revoke")
def revoke_token(token_id: int, db: Db, user: AdminUser) -> Response:
    try:
        enrolment.revoke_token(db, token_id, actor=user.username, actor_user_id=user.user_id)
    except enrolment.EnrolmentError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    db.commit()
    return RedirectResponse("/admin/enrolment", status.HTTP_303_SEE_OTHER)


@router.post("/admin/enrolment/requests/{request_id}")
def decide(
    request_id: int,
    db: Db,
    user: AdminUser,
    decision: Annotated[str, Form(max_length=16)],
) -> Response:
    try:
        enrolment.decide(
            db,
            request_id,
            approve=decision == "approve",
            actor=user.username,
            actor_user_id=user.user_id,
        )
    except enrolment.CounterTakenError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except enrolment.EnrolmentError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    db.commit()
    return RedirectResponse("/admin/enrolment", status.HTTP_303_SEE_OTHER)


def _broker_down() -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Courtier MQTT non connecté")


@router.post("/devices/{device_id}/rotate")
async def rotate_device(device_id: str, ctx: Ctx, user: AdminUser) -> Response:
    """New credentials on command: an approved request whose poll secret goes to the counter
    in a ``rotate_credentials`` command; it collects them and restarts with them."""
    ingest = ctx.ingest
    if ingest is None:
        raise _broker_down()
    command = contract.Command(request_id=uuid.uuid4(), at=utcnow(), name=ROTATE_COMMAND, args={})

    def run() -> None:
        with ctx.sessions.begin() as session:
            poll = enrolment.rotate(
                session, device_id, actor=user.username, actor_user_id=user.user_id
            )
            session.add(
                CommandRecord(
                    request_id=command.request_id,
                    device_id=device_id,
                    name=command.name,
                    args={},  # the poll secret is not kept
                    sent_at=command.at,
                )
            )
            audit.record(
                session, user.username, "command.send", device_id, actor_user_id=user.user_id,
                command=command.name, request_id=str(command.request_id),
            )  # fmt: skip
            ingest.send_command(device_id, command.model_copy(update={"args": {"poll": poll}}))

    try:
        await asyncio.to_thread(run)
    except enrolment.EnrolmentError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CommandNotSentError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "Courtier MQTT non connecté"
        ) from None
    return RedirectResponse("/admin/enrolment", status.HTTP_303_SEE_OTHER)


@router.post("/devices/{device_id}/revoke")
async def revoke_device(device_id: str, ctx: Ctx, user: AdminUser) -> Response:
    """Decommission: credentials deleted, broker reloaded (it drops the counter's MQTT
    session), and its signalling connection closed."""

    def run() -> None:
        with ctx.sessions.begin() as session:
            enrolment.revoke(session, device_id, actor=user.username, actor_user_id=user.user_id)

    try:
        await asyncio.to_thread(run)
    except enrolment.EnrolmentError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    await sync_broker(ctx)
    ctx.calls.drop_counter(device_id, CLOSE_UNAUTHORIZED, "guichet retiré du service")
    logger.info("counter revoked", extra={"device_id": device_id, "by": user.username})
    return RedirectResponse(f"/devices/{device_id}", status.HTTP_303_SEE_OTHER)
