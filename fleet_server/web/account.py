"""An administrator's own second factor (``/account/totp``): set up with a code, or removed.

The secret being set up waits in the (signed, not encrypted) session cookie until a first
code proves the authenticator app has it; only then is it stored on the user.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleet_server.models import User
from fleet_server.security import audit, auth
from fleet_server.web.deps import AdminUser, Db, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

SETUP_KEY = "totp_setup"


def _page(request: Request, row: User, user: AdminUser, error: str | None = None) -> Response:
    secret = None
    if row.totp_secret is None:
        secret = request.session.get(SETUP_KEY)
        if not isinstance(secret, str):
            secret = auth.new_totp_secret()
            request.session[SETUP_KEY] = secret
    context = {
        "section": "account",
        "enabled": row.totp_secret is not None,
        "secret": secret,
        "uri": auth.totp_uri(secret, row.username) if secret else None,
        "error": error,
    }
    code = status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK
    response = render(request, "account_totp.html", context, principal=user, status_code=code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _me(db: Db, user: AdminUser) -> User:
    row = db.get(User, user.user_id)
    assert row is not None  # admin_principal found it a moment ago
    return row


@router.get("/account/totp", response_class=HTMLResponse)
def totp_page(request: Request, db: Db, user: AdminUser) -> Response:
    return _page(request, _me(db, user), user)


@router.post("/account/totp", response_class=HTMLResponse)
def totp_enable(
    request: Request, db: Db, user: AdminUser, code: Annotated[str, Form(max_length=16)]
) -> Response:
    row = _me(db, user)
    secret = request.session.get(SETUP_KEY)
    if row.totp_secret is not None or not isinstance(secret, str):
        return RedirectResponse("/account/totp", status.HTTP_303_SEE_OTHER)
    step = auth.totp_step(secret, code)
    if step is None:
        return _page(request, row, user, "Code incorrect : vérifiez l'heure du téléphone.")
    row.totp_secret, row.totp_last_step = secret, step  # this code is used up
    request.session.pop(SETUP_KEY, None)
    audit.record(db, user.username, "user.totp_enable", row.username, actor_user_id=user.user_id)
    db.commit()
    return RedirectResponse("/account/totp", status.HTTP_303_SEE_OTHER)


@router.post("/account/totp/disable", response_class=HTMLResponse)
def totp_disable(
    request: Request, db: Db, user: AdminUser, code: Annotated[str, Form(max_length=16)]
) -> Response:
    row = _me(db, user)
    if row.totp_secret is None:
        return RedirectResponse("/account/totp", status.HTTP_303_SEE_OTHER)
    if not auth.use_totp(db, row, code):
        return _page(request, row, user, "Code incorrect.")
    db.refresh(row)
    row.totp_secret = None
    audit.record(db, user.username, "user.totp_disable", row.username, actor_user_id=user.user_id)
    db.commit()
    return RedirectResponse("/account/totp", status.HTTP_303_SEE_OTHER)
