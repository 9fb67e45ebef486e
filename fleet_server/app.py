"""The fleet server's one composition root: ``create_app(settings)``.

It builds the database engine, the session factory, the metrics registry, the templates
and the routes; its lifespan starts the MQTT ingest (when ``settings.ingest_enabled``) and a
periodic task running the health checks (staleness, alerts, retention) in a worker thread
every ``settings.staleness_check_s``. Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, status
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from fleet_server.api import actions as api_actions
from fleet_server.api import audit as api_audit
from fleet_server.api import calls as api_calls
from fleet_server.api import enrol as api_enrol
from fleet_server.api import fleet as api
from fleet_server.api import notifications as api_notifications
from fleet_server.api import scheme as api_scheme
from fleet_server.api import thresholds as api_thresholds
from fleet_server.api import updates as api_updates
from fleet_server.api import uploads as api_uploads
from fleet_server.api.guards import reject_nul
from fleet_server.api.responses import error_responses
from fleet_server.calls.manager import CallManager
from fleet_server.calls.store import CallJournal
from fleet_server.db import in_thread, make_engine, make_session_factory
from fleet_server.metrics import Metrics
from fleet_server.mqtt import health, uploads
from fleet_server.mqtt.broker_files import BrokerFiles
from fleet_server.mqtt.config_push import ConfigPusher, schedule_options
from fleet_server.mqtt.ingest import Ingest
from fleet_server.mqtt.notify.worker import DeliveryWorker
from fleet_server.scheme import appointments
from fleet_server.security.auth import (
    IP_THROTTLE_MAX_FAILURES,
    SESSION_MAX_AGE_S,
    LoginThrottle,
)
from fleet_server.security.proxies import TrustedProxies
from fleet_server.settings import Settings
from fleet_server.updates import runner as rollout_runner
from fleet_server.web import accessibility as web_accessibility
from fleet_server.web import account as web_account
from fleet_server.web import admin as web_admin
from fleet_server.web import agent as web_agent
from fleet_server.web import alerts as web_alerts
from fleet_server.web import audit_log as web_audit
from fleet_server.web import call_log as web_calls
from fleet_server.web import device as web_device
from fleet_server.web import device_actions as web_device_actions
from fleet_server.web import device_support as web_device_support
from fleet_server.web import enrolment as web_enrolment
from fleet_server.web import fleet as web_fleet
from fleet_server.web import login as web_auth
from fleet_server.web import notifications as web_notifications
from fleet_server.web import questionnaire as web_questionnaire
from fleet_server.web import reception as web_reception
from fleet_server.web import schedules as web_schedules
from fleet_server.web import signalling_ws
from fleet_server.web import statistics as web_stats
from fleet_server.web import updates as web_updates
from fleet_server.web import users as web_users
from fleet_server.web.deps import (
    AccessDeniedError,
    AppContext,
    CsrfRejectedError,
    LoginRequiredError,
    csrf_guard,
    nul_guard,
    render,
)
from fleet_server.web.format import make_templates
from fleet_server.web.login import TOTP_MAX_ATTEMPTS, TOTP_STEP_S
from guichet import __version__
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "web" / "static"
SESSION_COOKIE = "guichet_session"
ERROR_MESSAGES = {
    404: "Page introuvable.",
    405: "Méthode non autorisée.",
}
SECURITY_HEADERS = {
    # Everything is served from /static: no CDN, no inline script or style.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# Sent when the server is reached over HTTPS (secure cookies): browsers then refuse plain HTTP
# to this host for a year, so a LAN attacker cannot downgrade the next visit.
HSTS = {"Strict-Transport-Security": "max-age=31536000"}


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    ctx = AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        metrics=Metrics(),
        templates=make_templates(),
        throttle=LoginThrottle(),
        ip_throttle=LoginThrottle(max_failures=IP_THROTTLE_MAX_FAILURES),
        totp_throttle=LoginThrottle(
            max_failures=TOTP_MAX_ATTEMPTS, window_s=TOTP_STEP_S, lockout_s=TOTP_STEP_S
        ),
        broker=_broker_files(settings),
        calls=CallManager(
            CallJournal(sessions),
            ring_timeout_s=settings.ring_timeout_s,
            resume_window_s=settings.call_resume_window_s,
            ice_servers=settings.ice_servers,
            turn=settings.turn_issuer(),
            schedule_options=schedule_options(settings),
            test_call_measure_s=settings.test_call_measure_s,
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with _background(ctx):
            yield

    app = FastAPI(
        title="Guichet Proche — API de la flotte",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{api.API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(nul_guard), Depends(csrf_guard)],  # before any route's own
    )
    app.state.ctx = ctx
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=bool(settings.session_cookie_secure),
    )
    headers = SECURITY_HEADERS | (HSTS if settings.session_cookie_secure else {})

    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    app.middleware("http")(security_headers)
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxies)  # outermost
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        web_auth.router,
        web_fleet.router,
        web_device.router,
        web_device_actions.router,
        web_device_support.router,
        web_alerts.router,
        web_admin.router,
        web_agent.router,
        web_users.router,
        web_stats.router,
        web_audit.router,
        web_account.router,
        web_calls.router,
        web_enrolment.router,
        web_schedules.router,
        web_reception.router,
        web_questionnaire.router,
        web_accessibility.router,
        web_notifications.router,
        web_updates.router,
        signalling_ws.router,
    ):
        app.include_router(router)
    for router in (
        api_enrol.router,
        api.router,
        api_notifications.router,
        api_thresholds.router,
        api_actions.router,
        api_calls.router,
        api_scheme.router,
        api_audit.router,
        api_updates.router,
        api_updates.bundles_router,
    ):  # every API route refuses a NUL character as invalid: its 422 is declared
        app.include_router(
            router, dependencies=[Depends(reject_nul)], responses=error_responses({}, 422)
        )
    # A counter's upload and a release are binary bodies, read and capped as they stream (a
    # release to disk): not through the guard, which reads the whole body.
    app.include_router(api_uploads.router)
    app.include_router(api_updates.upload_router)
    app.include_router(api.metrics_router)
    _install_error_pages(app)
    return app


def _broker_files(settings: Settings) -> BrokerFiles | None:
    if settings.broker_files_dir is None:
        return None
    assert settings.mqtt_username  # both checked by Settings
    assert settings.mqtt_password
    return BrokerFiles(
        settings.broker_files_dir,
        settings.mqtt_username,
        settings.mqtt_password,
        settings.broker_pid_file,
    )


@asynccontextmanager
async def _background(ctx: AppContext) -> AsyncIterator[None]:
    """Run the ingest, the periodic health checks, the notifications' delivery worker and the
    call manager while the app serves."""
    ingest: Ingest | None = None
    if ctx.settings.ingest_enabled:
        ingest = Ingest(ctx.settings, ctx.sessions, ctx.metrics)
        await asyncio.to_thread(ingest.start)
        ctx.ingest = ingest
    if ctx.broker is not None:
        try:  # the server's own account and every enrolled counter, from the database
            await web_enrolment.sync_broker(ctx)
        except OSError:
            logger.exception("broker files not synchronised at start-up")
    checks = asyncio.create_task(_health_checks_forever(ctx), name="health-checks")
    notifier = ctx.notifier = DeliveryWorker(ctx.sessions, ctx.settings)
    deliveries = asyncio.create_task(notifier.run_forever(), name="notifications")
    rollouts = asyncio.create_task(_rollouts_forever(ctx), name="rollouts")
    await ctx.calls.start()
    pusher = ctx.config_pusher = ConfigPusher(ctx)  # counters' configs: now and periodically
    pusher.start()
    try:
        yield
    finally:
        await pusher.stop()
        if ctx.config_pusher is pusher:  # a test may run the lifespan twice, nested
            ctx.config_pusher = None
        await ctx.calls.stop()
        checks.cancel()
        deliveries.cancel()
        rollouts.cancel()
        await asyncio.gather(checks, deliveries, rollouts, return_exceptions=True)
        if ctx.notifier is notifier:
            ctx.notifier = None
        if ingest is not None:
            ctx.ingest = None
            await asyncio.to_thread(ingest.stop)
        ctx.engine.dispose()


async def _health_checks_forever(ctx: AppContext) -> None:
    """Staleness, alerts, retention (telemetry, appointments' citizen data) every
    ``staleness_check_s``; a failure is logged and retried at the next period rather than
    ending the task."""
    while True:
        try:
            # in_thread: cancelled at shutdown, it lets the check end before the engine goes
            await in_thread(health.run_checks, ctx.sessions, ctx.settings, ctx.metrics, utcnow())
            await in_thread(  # appointments' citizen data past its retention
                appointments.purge_expired,
                ctx.sessions,
                utcnow(),
                ctx.settings.appointment_retention_days,
            )
            await in_thread(uploads.purge_expired, ctx.sessions, utcnow())  # support files
        except Exception:
            logger.exception("health checks failed; retrying next period")
        await asyncio.sleep(ctx.settings.staleness_check_s)


async def _rollouts_forever(ctx: AppContext) -> None:
    """The rollout runner (docs/updates.md) every ``rollout_check_s``; a failure is logged
    and retried at the next period."""
    while True:
        try:
            await in_thread(
                rollout_runner.run_once,
                ctx.sessions,
                ctx.settings,
                ctx.ingest,
                ctx.calls.in_call,
                utcnow(),
            )
        except Exception:
            logger.exception("rollout runner failed; retrying next period")
        await asyncio.sleep(ctx.settings.rollout_check_s)


def _is_api(request: Request) -> bool:
    """JSON clients get FastAPI's JSON errors; browsers get a French page."""
    return request.url.path.startswith(api.API_PREFIX) or request.url.path == "/metrics"


def _install_error_pages(app: FastAPI) -> None:
    async def login_required(request: Request, _exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status.HTTP_303_SEE_OTHER)

    async def access_denied(request: Request, exc: Exception) -> Response:
        message = str(exc) or "Cette page est réservée aux administrateurs et aux auditeurs."
        return render(request, "error.html", {"message": message}, status_code=403)

    async def csrf_rejected(request: Request, _exc: Exception) -> Response:
        message = "Le formulaire a expiré. Rechargez la page et recommencez."
        return render(request, "error.html", {"message": message}, status_code=403)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if _is_api(request):
            return await http_exception_handler(request, exc)
        default = ERROR_MESSAGES.get(exc.status_code, "Une erreur est survenue.")
        message = default if exc.detail == HTTPStatus(exc.status_code).phrase else exc.detail
        return render(request, "error.html", {"message": message}, status_code=exc.status_code)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        message = "Les paramètres de cette adresse ne sont pas valides."
        return render(request, "error.html", {"message": message}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(LoginRequiredError, login_required)
    app.add_exception_handler(AccessDeniedError, access_denied)
    app.add_exception_handler(CsrfRejectedError, csrf_rejected)
    app.add_exception_handler(HTTPException, http_error)
