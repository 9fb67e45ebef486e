"""Every route of the web app, enumerated from its router, against who may reach it.

``POLICY`` classifies each (method, path) the app serves; a route the app has and the table
does not (or the other way round) fails ``test_every_route_is_classified``, so a new route
cannot ship without saying who may use it. Then, for every route and every role:
anonymous → login redirect / 401 / WebSocket 4401 unless allow-listed; a role outside the
route's set → 403 (4403); a state-changing request without the CSRF token → 403, even for
a role that may use the route.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import fastapi.routing
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from fleet_server.models import CommandRecord, Device, Release, SupportUpload, User
from fleet_server.security import auth
from fleet_server.updates import manage
from fleet_server.updates.waves import Rest
from fleet_server.web.deps import CSRF_EXEMPT
from guichet.contract import utcnow
from tests.support.databases import fresh_database
from tests.support.webapp import CSRF_RE, PASSWORD, WebApp, running_app

SITE_A, SITE_B = "Site A", "Site B"
ACTION_ID = uuid.UUID("d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70")  # an action sent to dev-a
SHOT_ID = uuid.UUID("e5f6a7b8-c9d0-4e1f-9a2b-3c4d5e6f7081")  # dev-a's screenshot, received
LOGS_ID = uuid.UUID("f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f708192")  # dev-a's logs, received
ROLES: Final = ("anonymous", "admin", "auditor", "reception", "agent")
LOGGED_IN = frozenset(ROLES) - {"anonymous"}
PUBLIC = frozenset(ROLES)
ADMIN = frozenset({"admin"})
READERS = frozenset({"admin", "auditor"})
SITE_STAFF = frozenset({"admin", "auditor", "reception"})
CALL_LOG = frozenset({"admin", "auditor", "agent"})
CONSOLE = frozenset({"admin", "agent"})
RECEPTION = frozenset({"admin", "reception"})
NOBODY: frozenset[str] = frozenset()  # no user session: a counter's own credential
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# (method, path) → the roles that may use it. "WS" is a WebSocket, "MOUNT" a mounted app.
POLICY: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("MOUNT", "/static"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/totp"): PUBLIC,
    ("POST", "/login/totp"): PUBLIC,
    ("POST", "/logout"): LOGGED_IN,
    ("GET", "/"): SITE_STAFF,
    ("GET", "/fleet/rows"): SITE_STAFF,
    ("GET", "/devices/{device_id}"): SITE_STAFF,
    ("GET", "/alerts"): READERS,
    ("GET", "/admin/services"): ADMIN,
    ("POST", "/admin/services"): ADMIN,
    ("POST", "/devices/{device_id}/service"): ADMIN,
    ("POST", "/devices/{device_id}/speech"): ADMIN,
    ("POST", "/devices/{device_id}/identity"): ADMIN,
    ("POST", "/devices/{device_id}/call-token"): ADMIN,
    ("GET", "/agent"): CONSOLE,
    ("GET", "/calls"): CALL_LOG,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}"): ADMIN,
    ("POST", "/admin/users/{user_id}/password"): ADMIN,
    ("POST", "/admin/users/{user_id}/active"): ADMIN,
    ("POST", "/admin/users/{user_id}/totp-reset"): ADMIN,
    ("GET", "/admin/audit"): READERS,
    ("GET", "/admin/audit.csv"): READERS,
    ("GET", "/statistiques"): SITE_STAFF,  # reception: their own site's figures only
    ("GET", "/statistiques.csv"): SITE_STAFF,
    ("GET", "/account/totp"): ADMIN,
    ("POST", "/account/totp"): ADMIN,
    ("POST", "/account/totp/disable"): ADMIN,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("GET", "/accessibilite"): PUBLIC,  # the accessibility statement, as the RGAA asks
    ("GET", "/api/v1/devices"): READERS,
    ("GET", "/api/v1/devices/{device_id}"): READERS,
    ("GET", "/api/v1/alerts"): READERS,
    ("GET", "/metrics"): READERS,
    ("GET", "/admin/enrolment"): ADMIN,
    ("POST", "/admin/enrolment/tokens"): ADMIN,
    ("POST", "/admin/enrolment/tokens/{token_id}/revoke"): ADMIN,
    ("POST", "/admin/enrolment/requests/{request_id}"): ADMIN,
    ("POST", "/devices/{device_id}/revoke"): ADMIN,
    ("POST", "/devices/{device_id}/rotate"): ADMIN,
    ("POST", "/api/v1/enrol"): PUBLIC,  # the enrolment token in the body is the credential
    ("POST", "/api/v1/enrol/collect"): NOBODY,  # the counter's poll secret, no user
    ("WS", "/ws/counter"): NOBODY,
    ("WS", "/ws/agent"): frozenset({"agent"}),  # an admin only watches a named service
    ("GET", "/admin/schedules"): ADMIN,
    ("POST", "/admin/schedules/services/{code}"): ADMIN,
    ("POST", "/admin/schedules/rules"): ADMIN,
    ("POST", "/admin/schedules/{kind}/{row_id}/delete"): ADMIN,
    ("POST", "/admin/schedules/permanences"): ADMIN,
    ("POST", "/admin/schedules/exceptions"): ADMIN,
    ("GET", "/admin/questionnaire"): ADMIN,
    ("POST", "/admin/questionnaire"): ADMIN,
    ("GET", "/reception"): RECEPTION,
    ("POST", "/reception/appointments"): RECEPTION,
    ("POST", "/reception/appointments/{appointment_id}/cancel"): RECEPTION,
    ("POST", "/agent/agenda-link"): frozenset({"agent"}),  # an admin has no calendar
    ("GET", "/ical/{token}.ics"): NOBODY,  # the secret in the URL is the credential
    ("GET", "/admin/notifications"): ADMIN,
    ("POST", "/admin/notifications/targets"): ADMIN,
    ("POST", "/admin/notifications/targets/{target_id}/delete"): ADMIN,
    ("GET", "/api/v1/notifications/targets"): ADMIN,
    ("POST", "/api/v1/notifications/targets"): ADMIN,
    ("DELETE", "/api/v1/notifications/targets/{target_id}"): ADMIN,
    ("GET", "/api/v1/notifications/deliveries"): ADMIN,
    ("POST", "/admin/notifications/thresholds"): ADMIN,
    ("POST", "/admin/notifications/thresholds/delete"): ADMIN,
    ("GET", "/api/v1/alert-thresholds"): ADMIN,
    ("PUT", "/api/v1/alert-thresholds/{site:path}"): ADMIN,
    ("DELETE", "/api/v1/alert-thresholds/{site:path}"): ADMIN,
    # Remote support's actions on counters (issue 14, item 1): administrators only.
    ("POST", "/devices/{device_id}/actions"): ADMIN,
    ("GET", "/devices/{device_id}/actions"): ADMIN,
    ("POST", "/fleet/actions"): ADMIN,
    ("POST", "/api/v1/devices/{device_id}/actions"): ADMIN,
    ("GET", "/api/v1/devices/{device_id}/actions"): ADMIN,
    ("GET", "/api/v1/devices/{device_id}/actions/{action_id}"): ADMIN,
    ("POST", "/api/v1/actions"): ADMIN,
    ("GET", "/api/v1/calls"): READERS,
    ("GET", "/api/v1/statistics"): READERS,
    ("GET", "/api/v1/timetables"): READERS,
    ("GET", "/api/v1/appointments"): READERS,
    ("GET", "/api/v1/audit"): READERS,
    # Its screenshots and logs (items 2 and 3): uploaded by the counter, shown to admins.
    ("PUT", "/api/v1/devices/{device_id}/uploads/{request_id}"): NOBODY,  # its call token
    ("GET", "/devices/{device_id}/screenshots/{shot_id}.png"): ADMIN,
    ("GET", "/devices/{device_id}/logs/{logs_id}"): ADMIN,
    ("GET", "/devices/{device_id}/logs/{logs_id}.jsonl.gz"): ADMIN,
    # Software updates (issue 13): readers see releases and rollouts, administrators act.
    ("GET", "/admin/versions"): READERS,
    ("POST", "/admin/versions"): ADMIN,
    ("POST", "/admin/rollouts"): ADMIN,
    ("GET", "/admin/rollouts/{rollout_id}"): READERS,
    ("POST", "/admin/rollouts/{rollout_id}/action"): ADMIN,
    ("GET", "/api/v1/releases"): READERS,
    ("POST", "/api/v1/releases"): ADMIN,
    ("GET", "/api/v1/releases/in-use"): READERS,
    ("GET", "/api/v1/rollouts"): READERS,
    ("POST", "/api/v1/rollouts"): ADMIN,
    ("GET", "/api/v1/rollouts/{rollout_id}"): READERS,
    ("POST", "/api/v1/rollouts/{rollout_id}/actions"): ADMIN,
    ("GET", "/api/v1/bundles/{version}"): NOBODY,  # the counter's broker credentials
}
# Routes whose credential is a secret in the path: a wrong one is 404 for everyone.
SECRET_IN_PATH: Final = frozenset({("GET", "/ical/{token}.ics")})
PARAMS = {
    "device_id": "dev-a",
    "user_id": "1",
    "token_id": "999",
    "request_id": "999",
    "code": "caf",
    "row_id": "999",
    "kind": "rules",
    "appointment_id": "999",
    "token": "gpi_" + "x" * 43,
    "target_id": "999",
    "action_id": str(ACTION_ID),
    "shot_id": str(SHOT_ID),
    "logs_id": str(LOGS_ID),
    "rollout_id": "1",
    "version": "1.5.0",
}
JSON_PREFIXES = ("/api/", "/metrics")


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the application serves, from its router.

    FastAPI ≥ 0.165 keeps included routers as lazy branches; ``iter_route_contexts`` (what
    its own OpenAPI generator walks) flattens them with their prefixes.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(flatten(app.routes)) if flatten else list(app.routes)
    found: set[tuple[str, str]] = set()
    for context in routes:
        route = getattr(context, "original_route", context)
        path = context.path
        if isinstance(route, Mount):
            found.add(("MOUNT", path))
        elif isinstance(route, APIWebSocketRoute | WebSocketRoute):
            found.add(("WS", path))
        elif isinstance(route, APIRoute | Route):
            methods = set(context.methods or ()) - {"HEAD", "OPTIONS"}
            found.update((m, path) for m in methods)
        else:
            raise AssertionError(f"unknown kind of route: {route!r}")
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    tmp: Path = tmp_path_factory.mktemp("routes")
    with fresh_database("sqlite", tmp) as url, running_app(url) as app:
        with app.sessions.begin() as session:
            auth.upsert_user(session, "admin", PASSWORD, role="admin")
            auth.upsert_user(session, "auditor", PASSWORD, role="auditor")
            auth.upsert_user(session, "reception", PASSWORD, role="reception", site=SITE_A)
            auth.upsert_user(session, "agent", PASSWORD, role="agent", service="caf")
            session.add(Device(id="dev-a", site=SITE_A, name="A", state="online"))
            session.add(Device(id="dev-b", site=SITE_B, name="B", state="online"))
            session.flush()
            session.add(
                CommandRecord(
                    request_id=ACTION_ID, device_id="dev-a", name="selftest", args={},
                    sent_at=utcnow(),
                )
            )  # fmt: skip
            for request_id, name, media_type, body in (
                (SHOT_ID, "screenshot", "image/png", b"\x89PNG\r\n\x1a\n"),
                (LOGS_ID, "fetch_logs", "application/gzip", gzip.compress(b'{"msg": "ok"}\n')),
            ):
                session.add(
                    CommandRecord(
                        request_id=request_id, device_id="dev-a", name=name, args={},
                        sent_at=utcnow(),
                    )
                )  # fmt: skip
                session.flush()
                session.add(
                    SupportUpload(
                        request_id=request_id, device_id="dev-a", media_type=media_type,
                        size=len(body), body=body, received_at=utcnow(),
                        expires_at=utcnow() + timedelta(days=1),
                    )
                )  # fmt: skip
            release = Release(
                version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10,
                sha256="a" * 64, path=str(tmp / "nowhere.raucb"), uploaded_at=utcnow(),
                uploaded_by="admin",
            )  # fmt: skip
            session.add(release)
            session.flush()
            plan = manage.RolloutPlan(release_id=release.id, specs=[Rest()])
            manage.create(session, plan, actor="admin", actor_user_id=None)  # rollout 1
        yield app


_SESSIONS: dict[tuple[int, str], dict[str, str]] = {}  # (app, role) → its session cookies


def as_role(web: WebApp, role: str) -> str:
    """Log the client in as ``role`` (or out, for anonymous); its CSRF token.

    Each role logs in once per app (argon2 makes a login cost ~0.2 s, and there are some
    300 cases); later cases reuse its session cookie, as a browser would — until a case
    ended that session (logout, a password reset: sessions are revocable)."""
    web.client.cookies.clear()
    key = (id(web), role)
    home = {"anonymous": "/login", "agent": "/agent"}.get(role, "/")
    if role != "anonymous":
        if key in _SESSIONS:
            web.client.cookies.update(_SESSIONS[key])
        if key not in _SESSIONS or refused_anonymous(
            web.client.get(home, follow_redirects=False), home
        ):
            web.client.cookies.clear()
            assert web.login(role).status_code == 303
            _SESSIONS[key] = dict(web.client.cookies)
    match = CSRF_RE.search(web.client.get(home).text)
    assert match
    return match.group(1)


def refused_anonymous(response: Any, path: str) -> bool:
    if path.startswith(JSON_PREFIXES):
        return bool(response.status_code == 401)
    location = response.headers.get("location", "")
    return response.status_code == 303 and location.startswith("/login")


def ws_close_code(web: WebApp, path: str) -> int | None:
    """The close code the server answers with, or None when the socket stays open."""
    try:
        with web.client.websocket_connect(path) as ws:
            ws.receive_json()
            return None
    except WebSocketDisconnect as exc:
        return exc.code


def test_every_route_is_classified(web: WebApp) -> None:
    served = app_routes(web.client.app)
    assert served - POLICY.keys() == set(), "routes with no access policy in POLICY"
    assert POLICY.keys() - served == set(), "POLICY lists routes the app no longer has"


CASES = [(key, role) for key in POLICY for role in ROLES]


@pytest.mark.parametrize(("key", "role"), CASES, ids=[f"{m} {p} {r}" for (m, p), r in CASES])
def test_route_access(web: WebApp, key: tuple[str, str], role: str) -> None:
    method, template = key
    allowed = role in POLICY[key]
    path = concrete(template)
    csrf = as_role(web, role)
    if method == "MOUNT":
        assert web.client.get("/static/app.css").status_code == 200
        return
    if method == "WS":
        code = ws_close_code(web, path)
        if allowed:
            assert code is None
        else:
            assert code == (4401 if role == "anonymous" or not POLICY[key] else 4403)
        return
    if key in SECRET_IN_PATH:
        assert web.client.get(path, follow_redirects=False).status_code == 404
        return
    if method in UNSAFE:
        check_unsafe(web, method, path, role, allowed, csrf, POLICY[key] == PUBLIC)
        return
    response = web.client.request(method, path, follow_redirects=False)
    if allowed:
        assert response.status_code < 400, response.text[:300]
        assert POLICY[key] == PUBLIC or not refused_anonymous(response, path)
    elif role == "anonymous":
        assert refused_anonymous(response, path), response.status_code
    elif not POLICY[key]:  # a credential of its own (a counter's): a user's session is none
        assert response.status_code == 401
    else:
        assert response.status_code == 403


def check_unsafe(
    web: WebApp, method: str, path: str, role: str, allowed: bool, csrf: str, role_free: bool
) -> None:
    if path in CSRF_EXEMPT:  # no cookie involved: the credential is in the request itself
        # a made-up credential: refused, 403 for a bad enrolment token, 401 for a poll
        # secret the server does not know (collect) — never accepted on the cookie's say
        body = {"token": "gpe_" + "x" * 43, "device_id": "dev-x", "hardware_id": "serial-0001"}
        assert web.client.request(method, path, json=body).status_code in (401, 403)
        return
    without = web.client.request(method, path, data={}, follow_redirects=False)
    if role == "anonymous" and not allowed:
        assert refused_anonymous(without, path) or without.status_code == 403
        return
    # Without the session's token: refused, whoever asks (the login forms included).
    assert without.status_code == 403, without.text[:300]
    forged = web.client.request(method, path, data={"csrf_token": "x" * 43}, follow_redirects=False)
    assert forged.status_code == 403
    if role == "anonymous" or role_free:
        return  # the login forms: with a token, an empty form is only a failed login
    with_token = web.client.request(method, path, data={"csrf_token": csrf}, follow_redirects=False)
    if allowed:
        assert with_token.status_code not in (401, 403), with_token.text[:300]
        assert path == "/logout" or not refused_anonymous(with_token, path)
    else:  # 401 where the route wants a credential of its own (the counter's poll secret)
        assert with_token.status_code in (401, 403)


# --- scopes within a role ---------------------------------------------------------------


def test_agent_of_caf_is_refused_msa_console_calls_and_socket(web: WebApp) -> None:
    as_role(web, "agent")
    assert web.client.get("/agent").status_code == 200
    assert web.client.get("/agent?service=caf").status_code == 200
    assert web.client.get("/agent?service=msa").status_code == 403
    assert web.client.get("/calls").status_code == 200
    assert web.client.get("/calls?service=msa").status_code == 403
    assert ws_close_code(web, "/ws/agent?service=msa") == 4403
    assert ws_close_code(web, "/ws/agent") is None


def test_admin_watches_a_named_service(web: WebApp) -> None:
    as_role(web, "admin")
    assert ws_close_code(web, "/ws/agent?service=msa") is None
    assert web.client.get("/calls?service=msa").status_code == 200


def test_reception_sees_only_its_own_site(web: WebApp) -> None:
    as_role(web, "reception")
    assert web.client.get("/devices/dev-a").status_code == 200
    assert web.client.get("/devices/dev-b").status_code == 403
    rows = web.client.get("/", params={"site": SITE_B}).text
    assert 'data-device-id="dev-a"' in rows
    assert 'data-device-id="dev-b"' not in rows
    fragment = web.client.get("/fleet/rows").text
    assert 'data-device-id="dev-b"' not in fragment


def test_a_deactivated_user_is_logged_out(web: WebApp) -> None:
    as_role(web, "auditor")
    assert web.client.get("/alerts").status_code == 200
    with web.sessions.begin() as session:
        user = session.query(User).filter_by(username="auditor").one()
        user.active = False
    try:
        assert refused_anonymous(web.client.get("/alerts", follow_redirects=False), "/alerts")
    finally:
        with web.sessions.begin() as session:
            session.query(User).filter_by(username="auditor").one().active = True
