"""The login form, the second-factor step and logout (every POST carries the CSRF token).

A user with a TOTP secret is not logged in by the password alone: the session then only
remembers, for ``TOTP_STEP_S``, who passed the first factor, and ``/login/totp`` asks for the
code. Failures at either step count against both throttles (username+IP, and IP alone), and
a pending session allows ``TOTP_MAX_ATTEMPTS`` wrong codes whatever the address: the count is
kept on the server under a random nonce, so replaying the pending cookie does not reset it.
The client IP is the peer's, or what a trusted proxy says (``security/proxies.py``).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleet_server.models import User
from fleet_server.security import auth
from fleet_server.security.roles import Role
from fleet_server.web.deps import AppContext, Ctx, Db, check_csrf, render, session_user

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

TOTP_STEP_S = 300.0  # the password step is valid this long while the code is typed
TOTP_MAX_ATTEMPTS = 5  # wrong codes per pending session; then the password step again
PENDING_UID, PENDING_AT, PENDING_NEXT = "totp_uid", "totp_at", "totp_next"
PENDING_NONCE = "totp_nonce"  # names the pending session in the server-side count


def safe_next(target: str | None) -> str:
    """Only a local path may follow a login (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def home_of(role: str) -> str:
    """Where a user lands when nothing else was asked for: agents their console, reception
    staff their site's page, administrators and auditors the fleet."""
    homes: dict[str, str] = {Role.AGENT: "/agent", Role.RECEPTION: "/reception"}
    return homes.get(role, "/")


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, db: Db, next: str = "/") -> Response:
    user = session_user(request, db)
    if user is not None:
        target = safe_next(next)
        target = home_of(user.role) if target == "/" else target
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    return render(request, "login.html", {"next": safe_next(next), "error": None, "username": ""})


def _locked(ctx: AppContext, key: str, ip: str) -> str | None:
    """The French "try later" message if this username+IP or this IP is locked."""
    wait_s = max(ctx.throttle.locked_for(key), ctx.ip_throttle.locked_for(ip))
    if wait_s <= 0:
        return None
    return f"Trop de tentatives. Réessayez dans {max(1, round(wait_s / 60))} min."


def _failed(ctx: AppContext, key: str, ip: str) -> None:
    ctx.throttle.failure(key)
    ctx.ip_throttle.failure(ip)


def _logged_in(
    request: Request, ctx: AppContext, db: Db, user: User, key: str, next: str
) -> Response:
    ctx.throttle.success(key)
    auth.start_session(db, request.session, user)
    logger.info("login", extra={"username": user.username, "ip": _client_ip(request)})
    target = safe_next(next)
    if target == "/":  # nothing asked for: the user's own home, not the fleet dashboard
        target = home_of(user.role)
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    ctx: Ctx,
    db: Db,
    # Defaults rather than required: a form without its CSRF token is refused as such (403)
    # before anything else is looked at.
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    def again(error: str, code: int) -> Response:
        context = {"next": safe_next(next), "error": error, "username": username}
        return render(request, "login.html", context, status_code=code)

    check_csrf(request, csrf_token)
    ip = _client_ip(request)
    key = f"{username.strip().lower()}|{ip}"
    locked = _locked(ctx, key, ip)
    if locked:
        return again(locked, status.HTTP_429_TOO_MANY_REQUESTS)
    user = auth.authenticate(db, username.strip(), password)
    if user is None:
        _failed(ctx, key, ip)
        logger.info("login failed", extra={"username": username, "ip": ip})
        return again("Identifiant ou mot de passe incorrect.", status.HTTP_401_UNAUTHORIZED)
    if user.totp_secret:
        request.session.clear()
        request.session.update(
            {
                PENDING_UID: user.id,
                PENDING_AT: time.time(),
                PENDING_NEXT: safe_next(next),
                PENDING_NONCE: secrets.token_urlsafe(16),
            }
        )
        auth.csrf_token(request.session)
        return RedirectResponse("/login/totp", status.HTTP_303_SEE_OTHER)
    return _logged_in(request, ctx, db, user, key, next)


def _pending_user(request: Request, db: Db) -> User | None:
    """The user who passed the password step less than ``TOTP_STEP_S`` ago, if any."""
    uid, at = request.session.get(PENDING_UID), request.session.get(PENDING_AT)
    if not isinstance(uid, int) or not isinstance(at, float) or time.time() - at > TOTP_STEP_S:
        return None
    user = db.get(User, uid)
    return user if user is not None and user.active and user.totp_secret else None


@router.get("/login/totp", response_class=HTMLResponse)
def totp_form(request: Request, db: Db) -> Response:
    if _pending_user(request, db) is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    return render(request, "login_totp.html", {"error": None})


@router.post("/login/totp", response_class=HTMLResponse)
def totp_submit(
    request: Request,
    ctx: Ctx,
    db: Db,
    code: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    user = _pending_user(request, db)
    if user is None or user.totp_secret is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    ip = _client_ip(request)
    key = f"{user.username.lower()}|{ip}"
    nonce = str(request.session.get(PENDING_NONCE, ""))
    locked = _locked(ctx, key, ip)
    if not locked and (not nonce or ctx.totp_throttle.locked_for(nonce) > 0):
        locked = "Trop de codes incorrects. Reconnectez-vous avec votre mot de passe."
    if locked:
        request.session.clear()
        return render(request, "login_totp.html", {"error": locked}, status_code=429)
    if not auth.use_totp(db, user, code):
        _failed(ctx, key, ip)
        ctx.totp_throttle.failure(nonce)
        logger.info("second factor failed", extra={"username": user.username, "ip": ip})
        error = "Code incorrect."
        return render(request, "login_totp.html", {"error": error}, status_code=401)
    next = str(request.session.get(PENDING_NEXT, "/"))
    return _logged_in(request, ctx, db, user, key, next)


@router.post("/logout")
def logout(request: Request, db: Db, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    auth.end_session(db, request.session)
    return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
