"""What every route shares: the application context, a database session per request, the
authenticated principal (by session cookie or bearer token) and page rendering.

HTML pages raise ``LoginRequiredError`` (turned into a 303 redirect to ``/login`` by the app) or
``AccessDeniedError`` (a 403 page); API routes answer 401 with ``WWW-Authenticate: Bearer``.

Who sees what (``tests/fleet_server/test_routes_access.py`` checks every route against it):
admin — everything; auditor — every page read-only (fleet, alerts, audit log, call log,
API, statistics); reception — the fleet table, counters' pages and statistics of their own
site only; agent — the console and the call log of their own service only.

``csrf_guard`` runs before every route: a POST/PUT/PATCH/DELETE must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``), except API calls whose bearer
token actually authenticates them (no ambient credential to abuse; a request with a bearer
header is authenticated by it alone — its cookie is ignored), the paths in ``CSRF_EXEMPT``
(unauthenticated JSON) and anonymous requests (no session to ride on: the route sends them to
the login form, and the login forms check their token themselves).

Forms answer with ``redirect_to`` (post/redirect/get): its message, and after a refusal what
was typed, wait in a flash (``flash.py``) that ``render`` hands the page it names, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from fleet_server.calls.manager import CallManager
from fleet_server.errors import FleetError
from fleet_server.metrics import Metrics
from fleet_server.models import User
from fleet_server.mqtt.broker_files import BrokerFiles
from fleet_server.mqtt.config_push import ConfigPusher
from fleet_server.mqtt.ingest import Ingest
from fleet_server.mqtt.notify.worker import DeliveryWorker
from fleet_server.security import auth, nul
from fleet_server.security.roles import DASHBOARD_ROLES, Role
from fleet_server.settings import Settings
from fleet_server.web.flash import NO_FLASH, Flash, FlashStore, FormValues, kept_values
from fleet_server.web.format import sentence
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
    ip_throttle: auth.LoginThrottle
    totp_throttle: auth.LoginThrottle  # wrong codes per pending second-factor session
    broker: BrokerFiles | None = None
    ingest: Ingest | None = None  # set while the app runs with its MQTT ingest
    config_pusher: ConfigPusher | None = None  # set while the app runs (config_push.py)
    notifier: DeliveryWorker | None = None  # set while the app runs (notify/worker.py)
    flashes: FlashStore = field(default_factory=FlashStore)  # forms' messages (flash.py)


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
    """The logged-in, active user of this request's session cookie, if any. A request that
    carries a bearer token is authenticated by the token alone: its cookie is ignored."""
    if bearer_token(request) is not None:
        return None
    if auth.session_user_id(request.session) is None:
        return None
    user = auth.session_owner(db, request.session)
    if user is None:  # logged out elsewhere, revoked, expired, or the user is gone
        request.session.clear()
    return user


def dashboard_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For HTML pages: a logged-in admin or auditor."""
    if user is None:
        raise LoginRequiredError
    if user.role not in DASHBOARD_ROLES:
        raise AccessDeniedError
    return auth.principal_of(user)


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (HTTP request or WebSocket)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def api_principal(
    request: Request, db: Db, user: Annotated[User | None, Depends(session_user)]
) -> auth.Principal:
    """For the JSON API and metrics: a bearer token, else the session; admin or auditor."""
    token = bearer_token(request)
    if token is not None:
        owner = auth.user_for_token(db, token)
        if owner is None:
            raise _unauthorized("Jeton d'API invalide.")
        user, via_token = owner, True
    elif user is None:
        raise _unauthorized("Authentification requise.")
    else:
        via_token = False
    if user.role not in DASHBOARD_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Rôle insuffisant.")
    return auth.principal_of(user, via_token=via_token)


def api_admin_principal(
    user: Annotated[auth.Principal, Depends(api_principal)],
) -> auth.Principal:
    """For API routes that change the setup: an administrator (auditors only read)."""
    if user.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Réservé aux administrateurs.")
    return user


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def fleet_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For the fleet table and counters' pages: admin, auditor, or reception (own site)."""
    if user is None:
        raise LoginRequiredError
    if user.role in DASHBOARD_ROLES or (user.role == Role.RECEPTION and user.site):
        return auth.principal_of(user)
    raise AccessDeniedError


def site_allowed(user: auth.Principal, site: str) -> bool:
    """Reception staff see their own site's counters only; the others see every site."""
    return user.role != Role.RECEPTION or user.site == site


def call_log_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For the call log: admin, auditor, or an agent (their own service only)."""
    if user is None:
        raise LoginRequiredError
    if user.role in DASHBOARD_ROLES or (user.role == Role.AGENT and user.service):
        return auth.principal_of(user)
    raise AccessDeniedError("Le journal des appels est réservé aux agents d'un service.")


def admin_principal(
    user: Annotated[auth.Principal, Depends(dashboard_principal)],
) -> auth.Principal:
    """For pages that change the fleet's setup: an administrator (auditors only read)."""
    if user.role != Role.ADMIN:
        raise AccessDeniedError("Cette action est réservée aux administrateurs.")
    return user


def agent_principal(
    user: Annotated[User | None, Depends(session_user)],
) -> auth.Principal:
    """For the agent console: an agent of a service, or an administrator (who watches)."""
    if user is None:
        raise LoginRequiredError
    if not (user.role == Role.AGENT and user.service) and user.role != Role.ADMIN:
        raise AccessDeniedError("La console est réservée aux agents d'un service.")
    return auth.principal_of(user)


DashboardUser = Annotated[auth.Principal, Depends(dashboard_principal)]
FleetUser = Annotated[auth.Principal, Depends(fleet_principal)]
CallLogUser = Annotated[auth.Principal, Depends(call_log_principal)]
AdminUser = Annotated[auth.Principal, Depends(admin_principal)]
AgentUser = Annotated[auth.Principal, Depends(agent_principal)]
ApiUser = Annotated[auth.Principal, Depends(api_principal)]
ApiAdmin = Annotated[auth.Principal, Depends(api_admin_principal)]


MESSAGE_KEYS = ("error", "message")  # what render() says as sentences
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CSRF_EXEMPT: set[str] = set()  # unauthenticated JSON endpoints (enrolment) add themselves


async def csrf_guard(conn: HTTPConnection) -> None:
    """Every state-changing request carries the session's CSRF token (see module doc)."""
    if conn.scope["type"] != "http" or conn.scope["method"] not in UNSAFE_METHODS:
        return
    if conn.url.path in CSRF_EXEMPT:
        return
    token = bearer_token(conn)
    if token is not None and await _token_authenticates(conn, token):
        return
    if auth.session_user_id(conn.session) is None:
        return  # anonymous: the route refuses it (login form and TOTP step check inline)
    submitted = conn.headers.get(CSRF_HEADER)
    if submitted is None and isinstance(conn, Request):
        content_type = conn.headers.get("content-type", "")
        if content_type.startswith(FORM_TYPES):
            _check_form_size(conn)  # before parsing: an upload's file goes to disk
            value = (await conn.form()).get(auth.CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
    if not auth.csrf_valid(conn.session, submitted):
        logger.warning("request rejected: bad or missing CSRF token", extra={"path": conn.url.path})
        raise CsrfRejectedError


API_PATHS = ("/api/", "/metrics")  # the API refuses a NUL itself, as invalid (422)


async def nul_guard(conn: HTTPConnection) -> None:
    """A page's address or form with a NUL character is a bad request (``security/nul.py``)."""
    if conn.scope["type"] != "http" or conn.url.path.startswith(API_PATHS):
        return
    found = nul.in_address(conn)
    is_form = conn.headers.get("content-type", "").startswith(FORM_TYPES)
    if not found and is_form and isinstance(conn, Request) and conn.method in UNSAFE_METHODS:
        _check_form_size(conn)  # before parsing: an upload's file goes to disk
        found = nul.in_form(list((await conn.form()).multi_items()))
    if found:
        logger.info("page request refused: NUL character")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, nul.MESSAGE)


FORM_OVERHEAD_BYTES = 1024 * 1024  # a form's other fields and multipart boundaries


def _check_form_size(request: Request) -> None:
    """A posted form declares its length (uvicorn holds the body to it) and stays within
    the largest upload (a release's bundle): a form is never parsed past that."""
    settings = app_context(request).settings
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED, "Longueur du formulaire requise.")
    if int(length) > settings.release_max_bytes + FORM_OVERHEAD_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Le fichier dépasse la taille permise ({settings.release_max_mb} Mo au plus).",
        )


async def _token_authenticates(conn: HTTPConnection, token: str) -> bool:
    ctx: AppContext = conn.app.state.ctx

    def run() -> bool:
        with ctx.sessions() as session:
            return auth.user_for_token(session, token) is not None

    return await asyncio.to_thread(run)


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
    """Render a page with what every template needs (user, CSRF token, clock, settings);
    its ``error`` or ``message`` is said as a sentence (capital, full stop)."""
    ctx = app_context(request)
    full: dict[str, Any] = {
        "flash": take_flash(request),
        "user": principal,
        "csrf_token": auth.csrf_token(request.session),
        "csrf_field": auth.CSRF_FIELD,
        "now": utcnow(),
        "refresh_s": ctx.settings.dashboard_refresh_s,
        "demo": ctx.settings.demo,
    }
    full.update(context or {})
    for key in MESSAGE_KEYS:  # domain errors are lowercase; a page shows them as sentences
        if isinstance(full.get(key), str):
            full[key] = sentence(full[key])
    return ctx.templates.TemplateResponse(request, name, full, status_code=status_code)


FLASH_SESSION_KEY = "flash"  # the session's pending flash, by its key in ``ctx.flashes``


async def submitted_form(request: Request) -> FormValues:
    """The posted form's fields as a refused form may keep them (no secrets: flash.py)."""
    form = await request.form()  # parsed once per request: the route's own fields reuse it
    return kept_values(form.multi_items())


SubmittedForm = Annotated[FormValues, Depends(submitted_form)]


def redirect_to(
    request: Request,
    url: str,
    *,
    form: str = "",
    error: str | None = None,
    notice: str | None = None,
    values: FormValues | None = None,
    changed: str = "",
    about: str = "",
) -> RedirectResponse:
    """Answer a form with ``303 See Other`` to ``url`` (post/redirect/get). The page there
    shows ``error`` or ``notice`` next to ``form`` and, with an error, the form filled in
    again with ``values``; ``changed`` names the row to mark, ``about`` the field the error
    concerns."""
    error, notice = sentence(error) or None, sentence(notice) or None
    if error or notice:
        flashes = app_context(request).flashes
        previous = request.session.get(FLASH_SESSION_KEY)
        if isinstance(previous, str):
            flashes.discard(previous)  # one pending flash per session
        kept = dict(values or {}) if error else {}
        flash = Flash(urlsplit(url).path, form, error, notice, kept, changed, about)
        request.session[FLASH_SESSION_KEY] = flashes.put(flash)
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def take_flash(request: Request) -> Flash:
    """The flash this session left for the page being shown (once), or an empty one. Only a
    GET of the page it names takes it: a fragment fetched meanwhile leaves it alone."""
    key = request.session.get(FLASH_SESSION_KEY)
    if not isinstance(key, str):
        return NO_FLASH
    flashes = app_context(request).flashes
    flash = flashes.peek(key)
    if flash is None:
        request.session.pop(FLASH_SESSION_KEY, None)
        return NO_FLASH
    if request.method != "GET" or request.url.path != flash.path:
        return NO_FLASH
    flashes.discard(key)
    request.session.pop(FLASH_SESSION_KEY, None)
    return flash
