"""Where a counter uploads remote support's files (issue 14, items 2 and 3): ``PUT
/api/v1/devices/{device_id}/uploads/{request_id}``, the body being the file (a PNG, or
gzip'd JSON lines), authenticated with the counter's own call token (``Authorization:
Bearer gpc_…``, the credential its ``/ws/counter`` uses: HTTPS, no broker involved).

The token must be this counter's (another counter's, a withdrawn counter's or none: 401 or
403); the action (its ``request_id``) must be this counter's, pending, and ask for a file
(404, 409); one file per action (a replay: 409); of its type (415) and at most
``guichet.actions.UPLOAD_MAX_BYTES`` (413, counted while reading: a lying
``Content-Length`` does not help). Every answer from an authenticated counter is in the
audit log, the refusals too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.calls import admin as calls_admin
from fleet_server.mqtt import uploads
from fleet_server.security import audit
from fleet_server.web.deps import AppContext, Ctx, bearer_token
from fleet_server.web.format import sentence
from guichet.actions import UPLOAD_MAX_BYTES
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["assistance"])

UPLOAD_ERRORS = {
    401: "Jeton du guichet absent, inconnu ou d'un guichet retiré.",
    403: "Jeton d'un autre guichet que celui du chemin.",
    404: "Action inconnue pour ce guichet, ou qui n'attend pas de fichier.",
    409: "Action déjà terminée, ou fichier déjà reçu pour elle.",
    413: "Fichier trop volumineux.",
    415: "Type de fichier inattendu pour cette action.",
    422: "Fichier illisible : pas une image PNG, pas un gzip, ou trop gros une fois décompressé.",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}


class UploadOut(BaseModel):
    request_id: uuid.UUID
    bytes: int


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "Fichier trop volumineux.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > UPLOAD_MAX_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "Fichier trop volumineux.")
    return bytes(body)


def _counter_of(ctx: AppContext, token: str | None) -> str | None:
    with ctx.sessions() as session:
        device = calls_admin.device_for_call_token(session, token)
        return device.id if device is not None and device.revoked_at is None else None


@router.put(
    "/devices/{device_id}/uploads/{request_id}",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    summary="Dépôt d'une capture d'écran ou de journaux par un guichet",
    description="Réservé au guichet lui-même (son jeton d'appel), en réponse à une action "
    "« Voir l'écran du guichet » (`image/png`) ou « Récupérer les journaux » "
    "(`application/gzip` : lignes JSON) en attente.",
    responses=error_responses(UPLOAD_ERRORS, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"image/png": BINARY, "application/gzip": BINARY},
        }
    },
)
async def put_upload(
    device_id: Annotated[str, Path(max_length=64)],
    request_id: Annotated[str, Path(max_length=64)],
    request: Request,
    ctx: Ctx,
) -> UploadOut:
    """``request_id`` is read as text and parsed after the token is checked: a stranger
    learns nothing from the shape of the answer."""
    counter = await asyncio.to_thread(_counter_of, ctx, bearer_token(request))
    if counter is None:
        logger.warning(
            "upload refused: missing or wrong call token", extra={"path_device": device_id[:64]}
        )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Jeton du guichet absent ou invalide.")
    if counter != device_id:
        await asyncio.to_thread(_refused, ctx, counter, request_id, "jeton d'un autre guichet")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Ce jeton n'est pas celui de ce guichet.")
    try:
        action_id = uuid.UUID(request_id)
    except ValueError:
        await asyncio.to_thread(_refused, ctx, counter, request_id, "action inconnue")
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Action inconnue.") from None
    try:
        body = await _read_capped(request)
    except HTTPException:
        await asyncio.to_thread(_refused, ctx, counter, request_id, "fichier trop volumineux")
        raise
    media_type = request.headers.get("content-type", "")
    retention = timedelta(hours=ctx.settings.support_retention_h)

    def keep() -> None:
        with ctx.sessions.begin() as session:
            uploads.accept(
                session, counter, action_id, media_type, body, now=utcnow(), retention=retention
            )

    try:
        await asyncio.to_thread(keep)
    except uploads.UploadRefusedError as exc:
        await asyncio.to_thread(_refused, ctx, counter, request_id, str(exc))
        raise HTTPException(exc.status, sentence(str(exc))) from None
    logger.info(
        "support file received",
        extra={"device_id": counter, "request_id": request_id, "bytes": len(body)},
    )
    return UploadOut(request_id=action_id, bytes=len(body))


def _refused(ctx: AppContext, device_id: str, request_id: str, why: str) -> None:
    logger.warning(
        "upload refused", extra={"device_id": device_id, "request_id": request_id[:64], "why": why}
    )
    with ctx.sessions.begin() as session:
        audit.record(
            session, uploads.counter_actor(device_id), "support.upload_refused", device_id,
            request_id=request_id[:64], why=why,
        )  # fmt: skip
