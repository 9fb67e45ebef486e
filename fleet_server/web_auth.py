"""The login form and logout (both POSTs carry the session's CSRF token)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleet_server import auth
from fleet_server.web_deps import Ctx, Db, check_csrf, render, session_user

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a local path may follow a login (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, db: Db, next: str = "/") -> Response:
    if session_user(request, db) is not None:
        return RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    return render(request, "login.html", {"next": safe_next(next), "error": None, "username": ""})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    ctx: Ctx,
    db: Db,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    def again(error: str, code: int) -> Response:
        context = {"next": safe_next(next), "error": error, "username": username}
        return render(request, "login.html", context, status_code=code)

    check_csrf(request, csrf_token)
    key = f"{username.strip().lower()}|{_client_ip(request)}"
    wait_s = ctx.throttle.locked_for(key)
    if wait_s > 0:
        minutes = max(1, round(wait_s / 60))
        message = f"Trop de tentatives. Réessayez dans {minutes} min."
        return again(message, status.HTTP_429_TOO_MANY_REQUESTS)
    user = auth.authenticate(db, username.strip(), password)
    if user is None:
        ctx.throttle.failure(key)
        logger.info("login failed", extra={"username": username, "ip": _client_ip(request)})
        return again("Identifiant ou mot de passe incorrect.", status.HTTP_401_UNAUTHORIZED)
    ctx.throttle.success(key)
    auth.start_session(request.session, user)
    logger.info("login", extra={"username": user.username, "ip": _client_ip(request)})
    target = safe_next(next)
    if target == "/" and user.role == "agent":
        target = "/agent"  # agents' home is their console, not the fleet dashboard
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
