"""Software updates in the JSON API (docs/updates.md): releases (read; upload, administrators,
the bundle as the raw request body), the versions the fleet runs, rollouts (read; create,
start, pause, resume, cancel, administrators), and the counters' own bundle download (HTTP
basic with the counter's broker credentials, only the release it was ordered, ranges).

Three routers, for ``app.py``: ``router`` (JSON, for people) and ``bundles_router`` (the
counters' download) go through the API's NUL guard; ``upload_router`` does not — its body is
a bundle of hundreds of megabytes, streamed to disk, which the guard would read whole."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from enum import Enum
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.errors import BundleError, RolloutError, UnknownRolloutError
from fleet_server.models import CounterUpdateRecord, Release, RolloutRecord
from fleet_server.security.counter_http import authenticate_counter
from fleet_server.updates import manage, records, releases
from fleet_server.updates.rollout import ROLLOUT_STATE_LABELS, RolloutAction, Threshold
from fleet_server.updates.rollout import RolloutState as RState
from fleet_server.updates.views import CounterOut, counter_out
from fleet_server.updates.waves import (
    MAX_CANARY,
    MAX_CHOSEN_DEVICES,
    MAX_CHOSEN_SITES,
    MAX_DEVICE_ID,
    MAX_SITE,
    MAX_WAVES,
)
from fleet_server.web.deps import ApiAdmin, ApiUser, AppContext, Ctx, Db
from guichet.updates import VERSION_PATTERN

logger = logging.getLogger(__name__)

TAGS: list[str | Enum] = ["mises à jour"]
ERRORS = {
    401: "Jeton absent ou invalide (pour un paquet : identifiants du guichet).",
    404: "Déploiement ou version inconnus ; pour un paquet : aucune mise à jour commandée.",
    409: "Action impossible dans l'état du déploiement, ou vagues impossibles à former.",
    411: "Longueur du fichier requise (`Content-Length`).",
    413: "Fichier trop volumineux.",
    416: "Plage demandée hors du fichier.",
    422: "Requête invalide, ou paquet refusé (signature, compatibilité, version).",
}
MAX_ID = 2**31 - 1  # an INTEGER column's largest value (SQLite would overflow, PostgreSQL refuse)
RolloutId = Annotated[int, Path(ge=1, le=MAX_ID)]

router = APIRouter(prefix=API_PREFIX, tags=TAGS, responses=error_responses(ERRORS, 401, 403))
upload_router = APIRouter(prefix=API_PREFIX, tags=TAGS)
bundles_router = APIRouter(prefix=API_PREFIX, tags=TAGS)
VERSION_RE = re.compile(VERSION_PATTERN)
BASIC_REALM = {"WWW-Authenticate": 'Basic realm="guichet-proche", charset="UTF-8"'}
BINARY = {"schema": {"type": "string", "format": "binary"}}


class ReleaseOut(BaseModel):
    id: int
    version: str
    compatible: str
    description: str | None
    size: int
    sha256: str
    signer: str | None
    adaptive: bool
    uploaded_at: datetime
    uploaded_by: str


class VersionInUse(BaseModel):
    version: str | None
    counters: int


class WaveIn(BaseModel):
    kind: Literal["canary", "percent", "devices", "sites", "rest"]
    count: Annotated[int | None, Field(ge=1, le=MAX_CANARY)] = None
    pct: Annotated[float | None, Field(gt=0, le=100)] = None
    device_ids: Annotated[
        list[Annotated[str, Field(max_length=MAX_DEVICE_ID)]], Field(max_length=MAX_CHOSEN_DEVICES)
    ] = []
    sites: Annotated[
        list[Annotated[str, Field(max_length=MAX_SITE)]], Field(max_length=MAX_CHOSEN_SITES)
    ] = []


class RolloutIn(BaseModel):
    release_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    waves: Annotated[list[WaveIn], Field(min_length=1, max_length=MAX_WAVES)]
    max_failures: Annotated[int | None, Field(ge=1)] = 1
    max_failure_pct: Annotated[float | None, Field(gt=0, le=100)] = None
    wave_timeout_h: Annotated[float, Field(gt=0, le=24 * 30)] = 72
    night_start: time | None = None
    night_end: time | None = None
    start: bool = True  # start at once (else a draft, started later)


class ActionIn(BaseModel):
    action: RolloutAction


class RolloutOut(BaseModel):
    id: int
    release: str
    state: str
    state_label: str
    reason: str | None
    current_wave: int
    waves: list[list[str]]
    wave_specs: list[dict[str, Any]]
    max_failures: int | None
    max_failure_pct: float | None
    night_start: time | None
    night_end: time | None
    created_at: datetime
    created_by: str
    counters: list[CounterOut] = []


def release_out(row: Release) -> ReleaseOut:
    return ReleaseOut(**{name: getattr(row, name) for name in ReleaseOut.model_fields})


def rollout_out(db: Db, record: RolloutRecord, *, counters: bool) -> RolloutOut:
    release = db.get(Release, record.release_id)
    assert release is not None
    rows = records.counter_rows(db, record.id) if counters else []
    return RolloutOut(
        id=record.id, release=release.version, state=record.state,
        state_label=ROLLOUT_STATE_LABELS[RState(record.state)], reason=record.reason,
        current_wave=record.current_wave, waves=record.waves, wave_specs=record.wave_specs,
        max_failures=record.max_failures, max_failure_pct=record.max_failure_pct,
        night_start=record.night_start, night_end=record.night_end,
        created_at=record.created_at, created_by=record.created_by,
        counters=[counter_out(r) for r in rows],
    )  # fmt: skip


@router.get("/releases", response_model=list[ReleaseOut], summary="Versions déposées")
def list_releases(db: Db, _user: ApiUser) -> list[ReleaseOut]:
    return [release_out(r) for r in releases.all_releases(db)]


@upload_router.post(
    "/releases",
    response_model=ReleaseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Déposer une version",
    description="Le paquet RAUC (`.raucb`) est le corps de la requête "
    "(`Content-Type: application/octet-stream`, `Content-Length` requis). Refusé (422) : "
    "signature, compatibilité, architecture, version pas plus récente ; 413 : trop gros.",
    responses=error_responses(ERRORS, 401, 403, 411, 413, 422),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": BINARY}}
    },
)
async def upload_release(request: Request, ctx: Ctx, user: ApiAdmin) -> ReleaseOut:
    """The request's body as a release, counted as it streams (a lying ``Content-Length``
    does not help: ``releases.receive`` stops at the cap)."""
    settings = ctx.settings
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED, "Longueur du fichier requise.")
    if int(length) > settings.release_max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            str(releases.UploadTooLargeError(settings.release_max_bytes)),
        )
    try:
        release = await releases.store(
            request.stream(), ctx.sessions, settings,
            actor=user.username, actor_user_id=user.user_id,
        )  # fmt: skip
    except releases.UploadTooLargeError as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except BundleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return release_out(release)


@router.get("/releases/in-use", response_model=list[VersionInUse], summary="Versions en service")
def in_use(db: Db, _user: ApiUser) -> list[VersionInUse]:
    return [VersionInUse(version=v, counters=n) for v, n in releases.versions_in_use(db)]


@router.get("/rollouts", response_model=list[RolloutOut], summary="Déploiements")
def list_rollouts(db: Db, _user: ApiUser) -> list[RolloutOut]:
    rows = db.scalars(select(RolloutRecord).order_by(RolloutRecord.id.desc()).limit(100))
    return [rollout_out(db, r, counters=False) for r in rows]


@router.get(
    "/rollouts/{rollout_id}",
    response_model=RolloutOut,
    summary="Un déploiement",
    responses=error_responses(ERRORS, 404, 422),
)
def get_rollout(rollout_id: RolloutId, db: Db, _user: ApiUser) -> RolloutOut:
    record = db.get(RolloutRecord, rollout_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Déploiement inconnu.")
    return rollout_out(db, record, counters=True)


def plan_of(body: RolloutIn) -> manage.RolloutPlan:
    try:
        specs = [records.spec_from_json(w.model_dump()) for w in body.waves]
        threshold = Threshold(body.max_failures, body.max_failure_pct)
    except RolloutError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return manage.RolloutPlan(
        release_id=body.release_id,
        specs=specs,
        threshold=threshold,
        wave_timeout=timedelta(hours=body.wave_timeout_h),
        night_start=body.night_start,
        night_end=body.night_end,
    )


@router.post(
    "/rollouts",
    response_model=RolloutOut,
    status_code=status.HTTP_201_CREATED,
    summary="Créer (et lancer) un déploiement",
    description="Vagues : `canary` (`count` guichets), `percent` (`pct` % de la cible), "
    "`devices` (`device_ids`), `sites` (`sites`), `rest` (tous les autres, en dernier). "
    "Un site ou un guichet qu'aucun guichet en service n'a ou n'est : refusé (409). Plage "
    "de nuit (heure de Paris) : `night_start` et `night_end`, ou aucune des deux.",
    responses=error_responses(ERRORS, 400, 404, 409, 422),
)
async def create_rollout(body: RolloutIn, ctx: Ctx, user: ApiAdmin) -> RolloutOut:
    plan = plan_of(body)

    def run() -> int:
        with ctx.sessions.begin() as session:
            record = manage.launch(
                session, plan, start=body.start, actor=user.username, actor_user_id=user.user_id
            )
            return record.id

    return await _rollout_after(ctx, run)


@router.post(
    "/rollouts/{rollout_id}/actions",
    response_model=RolloutOut,
    summary="Lancer, mettre en pause, reprendre ou annuler un déploiement",
    responses=error_responses(ERRORS, 400, 404, 409, 422),
)
async def rollout_action(
    rollout_id: RolloutId, body: ActionIn, ctx: Ctx, user: ApiAdmin
) -> RolloutOut:
    def run() -> int:
        with ctx.sessions.begin() as session:
            manage.perform(
                session, rollout_id, body.action, actor=user.username, actor_user_id=user.user_id
            )
        return rollout_id

    return await _rollout_after(ctx, run)


async def _rollout_after(ctx: AppContext, change: Callable[[], int]) -> RolloutOut:
    """Run ``change`` (it returns the rollout's id) and answer the rollout as it now is; an
    unknown rollout or release is a 404, a refused change a 409 with its French reason."""
    try:
        rollout_id = await asyncio.to_thread(change)
    except UnknownRolloutError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except RolloutError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    with ctx.sessions() as session:
        record = session.get(RolloutRecord, rollout_id)
        assert record is not None
        return rollout_out(session, record, counters=True)


BUNDLE_ROUTE = records.BUNDLE_PATH.removeprefix(API_PREFIX) + "{version}"
BUNDLE_DOC: dict[str, Any] = {
    "response_class": FileResponse,
    "responses": {
        200: {"content": {"application/octet-stream": BINARY}},
        206: {"description": "La plage demandée.", "content": {"application/octet-stream": BINARY}},
        **error_responses(ERRORS, 401, 404, 416),
    },
    "description": "Authentification HTTP basique du guichet (son identifiant et son mot de "
    "passe du courtier). Seule la version commandée à ce guichet ; requêtes partielles "
    "(`Range`) acceptées, pour reprendre un téléchargement coupé.",
}


@bundles_router.head(
    BUNDLE_ROUTE,
    summary="Taille du paquet d'une version, pour le guichet à qui elle est commandée",
    operation_id="bundle_head",
    **BUNDLE_DOC,
)
@bundles_router.get(
    BUNDLE_ROUTE,
    summary="Paquet d'une version, pour le guichet à qui elle est commandée",
    operation_id="bundle_get",
    **BUNDLE_DOC,
)
def download_bundle(version: str, request: Request, db: Db, ctx: Ctx) -> FileResponse:
    device = authenticate_counter(db, request.headers.get("authorization"))
    if device is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Identifiants du guichet requis.", headers=BASIC_REALM
        )
    release = _ordered_release(db, device.id)
    if VERSION_RE.fullmatch(version) is None or release is None or release.version != version:
        logger.warning(
            "bundle refused: not ordered", extra={"device_id": device.id, "release": version}
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Aucune mise à jour commandée.")
    path = FilePath(release.path)
    if request.method == "GET":
        ctx.metrics.bundle_bytes.inc(served_bytes(request.headers.get("range"), release.size))
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        headers={"Cache-Control": "private, no-store"},
    )


_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def served_bytes(header: str | None, size: int) -> int:
    """The bytes a request for a file of ``size`` gets: all of it without ``Range``, the
    satisfiable part of each range with one, nothing for a malformed header (refused)."""
    if header is None:
        return size
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return 0
    total = 0
    for part in ranges.split(","):
        match = _RANGE.fullmatch(part)
        if match is None or match.groups() == ("", ""):
            return 0
        first, last = match.groups()
        if first == "":  # the last n bytes
            total += min(int(last), size)
            continue
        end = min(int(last), size - 1) if last else size - 1
        total += max(0, end - int(first) + 1)
    return total


def _ordered_release(db: Db, device_id: str) -> Release | None:
    """The release of this counter's latest order (any rollout, cancelled ones included:
    an order already sent runs to its end)."""
    query = (
        select(CounterUpdateRecord.release)
        .where(
            CounterUpdateRecord.device_id == device_id,
            CounterUpdateRecord.ordered_at.is_not(None),
        )
        .order_by(CounterUpdateRecord.ordered_at.desc(), CounterUpdateRecord.id.desc())
        .limit(1)
    )
    version = db.scalar(query)
    if version is None:
        return None
    return db.scalar(select(Release).where(Release.version == version))
