"""What every route shares: the application context, a database session per request, the
authenticated principal (by session cookie or bearer token) and page rendering.

HTML pages raise ``LoginRequiredError`` (turned into a 303 redirect to ``/login`` by the app) or
``AccessDeniedError`` (a 403 page); API routes answer 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fleet_server import auth
from fleet_server.calls import CallManager
from fleet_server.errors import FleetError
from fleet_server.metrics import Metrics
from fleet_server.models import User
from fleet_server.settings import Settings
from guichet.contract import utcnow

logger = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Everything ``create_app`` built, reachable from a request as ``app.state.ctx``."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    metrics: Metrics
    templates: Jinja2Templates
    throttle: auth.LoginThrottle
    calls: CallManager


class LoginRequiredError(FleetError):
    """An anonymous visitor asked for a page: send them to the login form."""


class AccessDeniedError(FleetError):
    """A logged-in user whose role may not see this page."""


class CsrfRejectedError(FleetError):
    """A state-changing form arrived without this session's CSRF token."""


def app_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


Ctx = Annotated[AppContext, Depends(app_context)]


def get_db(ctx: Ctx) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


Db = Annotated[Session, Depends(get_db)]


def session_user(request: Request, db: Db) -> User | None:
    """The logged-in, active user of this request's session cookie, if any."""
    uid = auth.session_user_id(request.session)
    if uid is None:
        return None
    user = db.get(User, uid)
    if user is None or not user.active:
        request.session.clear()
        return None
    return user


def dashboard_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For HTML pages: a logged-in admin or auditor."""
    if user is None:
        raise LoginRequiredError
    if user.role not in auth.DASHBOARD_ROLES:
        raise AccessDeniedError
    return auth.principal_of(user)


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def api_principal(
    request: Request, db: Db, user: Annotated[User | None, Depends(session_user)]
) -> auth.Principal:
    """For the JSON API and metrics: a bearer token, else the session; admin or auditor."""
    token = _bearer_token(request)
    if token is not None:
        owner = auth.user_for_token(db, token)
        if owner is None:
            raise _unauthorized("Jeton d'API invalide.")
        user, via_token = owner, True
    elif user is None:
        raise _unauthorized("Authentification requise.")
    else:
        via_token = False
    if user.role not in auth.DASHBOARD_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Rôle insuffisant.")
    return auth.principal_of(user, via_token=via_token)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def admin_principal(
    user: Annotated[auth.Principal, Depends(dashboard_principal)],
) -> auth.Principal:
    """For pages that change the fleet's setup: an administrator (auditors only read)."""
    if user.role != "admin":
        raise AccessDeniedError("Cette action est réservée aux administrateurs.")
    return user


def agent_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For the agent console: an agent of a service, or an administrator (who watches)."""
    if user is None:
        raise LoginRequiredError
    if not (user.role == "agent" and user.service) and user.role != "admin":
        raise AccessDeniedError("La console est réservée aux agents d'un service.")
    return auth.principal_of(user)


DashboardUser = Annotated[auth.Principal, Depends(dashboard_principal)]
AdminUser = Annotated[auth.Principal, Depends(admin_principal)]
AgentUser = Annotated[auth.Principal, Depends(agent_principal)]
ApiUser = Annotated[auth.Principal, Depends(api_principal)]


def check_csrf(request: Request, submitted: str | None) -> None:
    if not auth.csrf_valid(request.session, submitted):
        logger.warning("form rejected: bad or missing CSRF token", extra={"path": request.url.path})
        raise CsrfRejectedError


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    principal: auth.Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what every template needs (user, CSRF token, clock, settings)."""
    ctx = app_context(request)
    full: dict[str, Any] = {
        "user": principal,
        "csrf_token": auth.csrf_token(request.session),
        "csrf_field": auth.CSRF_FIELD,
        "now": utcnow(),
        "refresh_s": ctx.settings.dashboard_refresh_s,
        "demo": ctx.settings.demo,
    }
    full.update(context or {})
    return ctx.templates.TemplateResponse(request, name, full, status_code=status_code)
