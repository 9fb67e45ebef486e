"""``/api/v1/audit``: the audit log, newest first, filtered and paged with the query the
``/admin/audit`` page uses (admins and auditors)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from fleet_server import paging
from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.security import audit
from fleet_server.web.deps import ApiUser, Db

logger = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["audit"])

ERRORS = {400: "Curseur invalide.", 422: "Paramètres invalides."}
Text = Annotated[str | None, Query(max_length=paging.MAX_SEARCH_LENGTH)]
Cursor = Annotated[str | None, Query(max_length=256)]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_user_id: int | None
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None
    prev_cursor: str | None


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Journal d'audit",
    description="Les actes d'administration, les plus récents d'abord, filtrables par "
    "`action`, auteur (`actor`, nom exact), objet (`target`, contenu) et jour (`until` : ce "
    "jour de Paris ou avant). Pages : `next_cursor` dans `after`, `prev_cursor` dans `before`.",
    responses=error_responses(ERRORS, 400, 401, 403, 422),
)
def list_audit(
    db: Db,
    _user: ApiUser,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Text = None,
    target: Text = None,
    until: date | None = None,
    after: Cursor = None,
    before: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)] = paging.DEFAULT_PAGE_SIZE,
) -> AuditPage:
    flt = audit.AuditFilter(action=action, actor=actor, target=target, until=until)
    try:
        page = audit.audit_page(db, flt, after=after, before=before, limit=limit)
    except paging.BadCursorError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Curseur invalide.") from None
    return AuditPage(
        items=[AuditOut.model_validate(e) for e in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )
