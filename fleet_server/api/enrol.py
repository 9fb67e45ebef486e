"""The enrolment API a counter talks to before it has any credential.

``POST /api/v1/enrol`` is, with the login form, the only route open without a session or a
token: it needs an enrolment token in its body. ``POST /api/v1/enrol/collect`` is
authenticated by the poll secret the first call returned (``Authorization: Bearer gpp_…``)
and answers the request's state, with the credentials exactly once. Refusals say nothing
about which part was wrong.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.security import enrolment
from fleet_server.web.deps import CSRF_EXEMPT, Ctx, Db, bearer_token
from fleet_server.web.enrolment import sync_broker

logger = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["enrôlement"])
ENROL_PATH = f"{API_PREFIX}/enrol"
COLLECT_PATH = f"{API_PREFIX}/enrol/collect"
# No session involved: the token in the body, or the poll secret, is the credential (a poll
# secret is no API token, so the CSRF guard would otherwise check a cookie it never uses).
CSRF_EXEMPT.update({ENROL_PATH, COLLECT_PATH})
ENROL_ERRORS = {
    401: "Secret de suivi absent ou invalide.",
    403: "Demande refusée (jeton, identifiant ou matériel).",
    422: "Requête invalide.",
}


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=8, max_length=128)
    device_id: str = Field(min_length=1, max_length=64)
    hardware_id: str = Field(min_length=4, max_length=128)
    name: str = Field(default="", max_length=128)


class EnrolOut(BaseModel):
    state: str
    poll_secret: str


class CredentialsOut(BaseModel):
    state: str
    device_id: str | None = None
    broker_username: str | None = None
    broker_password: str | None = None
    call_token: str | None = None


@router.post(
    "/enrol",
    response_model=EnrolOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Demande d'enrôlement d'un guichet",
    responses=error_responses(ENROL_ERRORS, 400, 403, 422),
)
def enrol(body: EnrolIn, db: Db) -> EnrolOut:
    try:
        state, poll = enrolment.request(db, body.token, body.device_id, body.hardware_id, body.name)
    except enrolment.EnrolmentError as exc:
        db.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return EnrolOut(state=state, poll_secret=poll)


@router.post(
    "/enrol/collect",
    response_model=CredentialsOut,
    summary="État d'une demande d'enrôlement ; identifiants du guichet, une seule fois",
    responses=error_responses(ENROL_ERRORS, 401),
)
async def collect(request: Request, ctx: Ctx) -> CredentialsOut:
    poll = bearer_token(request)
    if poll is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Secret de suivi requis.")

    def run() -> tuple[str, enrolment.Credentials | None]:
        with ctx.sessions() as session:
            return enrolment.collect(session, poll)

    try:
        state, creds = await asyncio.to_thread(run)
    except enrolment.EnrolmentError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Secret de suivi invalide.") from None
    if creds is None:
        return CredentialsOut(state=state)
    await sync_broker(ctx)  # the broker knows the counter before the counter tries it
    return CredentialsOut(
        state=state,
        device_id=creds.device_id,
        broker_username=creds.broker_username,
        broker_password=creds.broker_password,
        call_token=creds.call_token,
    )
