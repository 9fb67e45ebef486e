"""An administrator's own second factor (``/account/totp``): set up with a code, or removed.

The secret being set up waits in the (signed, not encrypted) session cookie until a first
code proves the authenticator app has it; only then is it stored on the user. The page shows
it as a QR code (drawn here, ``segno``) and as a key to type. A wrong code comes back by
post/redirect/get with its message and nothing else (a code is never kept).
"""

from __future__ import annotations

import logging
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from fleet_server.models import User
from fleet_server.security import audit, auth
from fleet_server.web.deps import AdminUser, Db, redirect_to, render, take_flash

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

SETUP_KEY = "totp_setup"
QR_SCALE = 5  # pixels per module: ~200 px square, easy for a phone's camera at arm's length
PAGE, FORM = "/account/totp", "totp"
WRONG_CODE_CLOCK = "Code incorrect : vérifiez l'heure du téléphone."


def qr_code(uri: str) -> Markup:
    """The ``otpauth://`` URI as an inline SVG QR code, made here: the secret goes to no
    outside service, and the page's Content-Security-Policy needs no ``data:`` image."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=QR_SCALE, title="Code QR à scanner", svgclass="totp-qr")
    # segno's own markup: paths and numbers only (the URI is encoded, never written out)
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704


def _page(request: Request, row: User, user: AdminUser) -> Response:
    secret = None
    if row.totp_secret is None:
        secret = request.session.get(SETUP_KEY)
        if not isinstance(secret, str):
            secret = auth.new_totp_secret()
            request.session[SETUP_KEY] = secret
    uri = auth.totp_uri(secret, row.username) if secret else None
    flash = take_flash(request)
    context = {
        "flash": flash,
        "error": flash.error_for(FORM),
        "section": "account",
        "enabled": row.totp_secret is not None,
        "secret": secret,
        "uri": uri,
        "qr": qr_code(uri) if uri else None,
    }
    response = render(request, "account_totp.html", context, principal=user)
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
        return redirect_to(request, PAGE, form=FORM, error=WRONG_CODE_CLOCK)
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
        return redirect_to(request, PAGE, form=FORM, error="Code incorrect.")
    db.refresh(row)
    row.totp_secret = None
    audit.record(db, user.username, "user.totp_disable", row.username, actor_user_id=user.user_id)
    db.commit()
    return RedirectResponse("/account/totp", status.HTTP_303_SEE_OTHER)
