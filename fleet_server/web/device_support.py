"""Remote support's files on a counter's page (administrators; issue 14, items 2 and 3):
the screenshot a ``screenshot`` action brought back, and the logs of a ``fetch_logs`` one,
shown with filters (level and above, logger, text) and downloadable as they came (gzip'd
JSON lines). Each view or download is in the audit log (``support.view``). Gone once past
``support_retention_h``: 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fleet_server.models import Device, SupportUpload
from fleet_server.mqtt import uploads
from fleet_server.mqtt.actions import one_action
from fleet_server.security import audit
from fleet_server.web.deps import AdminUser, Db, render
from guichet.actions import LOGS_TYPE, SCREENSHOT_TYPE
from guichet.contract import utcnow

router = APIRouter(include_in_schema=False)

SHOWN_LINES = 2000  # lines a page shows at most (the download has them all)
LEVEL_LABELS = {
    "": "Tous les niveaux",
    "info": "Information et plus",
    "warning": "Avertissement et plus",
    "error": "Erreur et plus",
}
NOT_KEPT = "Fichier inconnu ou plus conservé."


def _file(db: Session, device_id: str, request_id: uuid.UUID, media_type: str) -> SupportUpload:
    upload = uploads.upload_for(db, device_id, request_id)
    if upload is None or upload.media_type != media_type:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_KEPT)
    return upload


def _viewed(db: Session, user_name: str, user_id: int, upload: SupportUpload, what: str) -> None:
    audit.record(
        db, user_name, "support.view", upload.device_id, actor_user_id=user_id,
        command=what, request_id=str(upload.request_id),
    )  # fmt: skip
    db.commit()


@router.get("/devices/{device_id}/screenshots/{shot_id}.png")
def screenshot(device_id: str, shot_id: uuid.UUID, db: Db, user: AdminUser) -> Response:
    upload = _file(db, device_id, shot_id, SCREENSHOT_TYPE)
    body = upload.body
    _viewed(db, user.username, user.user_id, upload, "screenshot")
    return Response(body, media_type=SCREENSHOT_TYPE, headers={"Cache-Control": "no-store"})


@router.get("/devices/{device_id}/logs/{logs_id}.jsonl.gz")
def logs_download(device_id: str, logs_id: uuid.UUID, db: Db, user: AdminUser) -> Response:
    upload = _file(db, device_id, logs_id, LOGS_TYPE)
    body = upload.body
    name = f"journaux-{device_id}-{upload.received_at:%Y%m%d-%H%M%S}.jsonl.gz"
    _viewed(db, user.username, user.user_id, upload, "fetch_logs")
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(body, media_type=LOGS_TYPE, headers=headers)


@router.get("/devices/{device_id}/logs/{logs_id}")
def logs_page(
    request: Request,
    device_id: str,
    logs_id: uuid.UUID,
    db: Db,
    user: AdminUser,
    level: Annotated[str, Query(max_length=16)] = "",
    logger: Annotated[str, Query(max_length=128)] = "",
    q: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    device = db.get(Device, device_id)
    upload = _file(db, device_id, logs_id, LOGS_TYPE)
    action = one_action(db, device_id, logs_id, utcnow())
    everything = uploads.log_lines(upload.body)
    found = uploads.filter_lines(everything, level=level, logger=logger.strip(), text=q.strip())
    loggers = sorted({line.logger for line in everything if line.logger})
    context = {
        "device": device,
        "upload": upload,
        "action": action,
        "lines": found[-SHOWN_LINES:],
        "total": len(everything),
        "matched": len(found),
        "shown_max": SHOWN_LINES,
        "loggers": loggers,
        "levels": LEVEL_LABELS,
        "filters": {"level": level, "logger": logger, "q": q},
        "download_url": f"/devices/{device_id}/logs/{logs_id}.jsonl.gz",
    }
    response = render(request, "device_logs.html", context, principal=user)
    _viewed(db, user.username, user.user_id, upload, "fetch_logs")
    return response
