"""``guichet fleet …``: serve, ingest, migrate, create-user, create-api-token, counter-token,
create-service.

Settings come from ``GUICHET_*`` environment variables; an invalid or unsafe setting is one
line on standard error and exit code 2. ``serve`` listens on ``GUICHET_HOST`` (default
127.0.0.1: put a TLS reverse proxy in front rather than exposing it).

The long-running commands (``serve``, ``ingest``) log at INFO; the one-shot ones print what
the user asked for and nothing else — their logging (Alembic's "Running upgrade…" lines
included) starts at WARNING. ``GUICHET_LOG_LEVEL`` sets the level for all of them.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from guichet.logs import setup_logging

if TYPE_CHECKING:  # registering the subcommands must not load the server's dependencies
    from sqlalchemy.orm import Session

    from fleet_server.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
SERVICE_ACTIONS = frozenset({"serve", "ingest"})  # run for hours: their log is their output
SERVICE_LOG_LEVEL, ONE_SHOT_LOG_LEVEL = "INFO", "WARNING"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``fleet {serve,ingest,migrate,…}`` to the ``guichet`` parser (``guichet_cli``)."""
    fleet = sub.add_parser("fleet", help="the fleet server").add_subparsers(
        dest="action", required=True
    )
    fleet.add_parser("serve", help="serve the dashboard, API and MQTT ingest").add_argument(
        "--port", type=int, default=8000
    )
    fleet.add_parser("ingest", help="run only the MQTT ingest (no web), for extra replicas")
    fleet.add_parser("migrate", help="apply database migrations")
    user = fleet.add_parser("create-user", help="create or update a dashboard user")
    user.add_argument("username")
    user.add_argument("--role", default="admin", choices=["admin", "agent", "reception", "auditor"])
    user.add_argument("--service", default=None)
    user.add_argument("--site", default=None)
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    token = fleet.add_parser("create-api-token", help="print a new API token for a user")
    token.add_argument("username")
    token.add_argument("--name", default="api")
    counter_token = fleet.add_parser(
        "counter-token", help="print a new call token for a counter (the old one stops working)"
    )
    counter_token.add_argument("device_id")
    service = fleet.add_parser("create-service", help="create a service agents answer for")
    service.add_argument("code", help="short code, e.g. caf")
    service.add_argument("label", help="French label, e.g. « Caf »")


def main(args: argparse.Namespace) -> int:
    from fleet_server.settings import Settings

    default_level = SERVICE_LOG_LEVEL if args.action in SERVICE_ACTIONS else ONE_SHOT_LOG_LEVEL
    setup_logging(os.environ.get("GUICHET_LOG_LEVEL", default_level))
    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail(f"réglages invalides : {settings_error(exc)}", EXIT_USAGE)
    actions = {
        "serve": _serve,
        "ingest": _ingest,
        "migrate": _migrate,
        "create-user": _create_user,
        "create-api-token": _create_api_token,
        "counter-token": _counter_token,
        "create-service": _create_service,
    }
    action = actions.get(args.action)
    if action is None:
        return _fail(f"action inconnue : {args.action}", EXIT_USAGE)
    return action(settings, args)


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable at fault."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"GUICHET_{where.upper()} : {message}" if where else message


@contextmanager
def _database(settings: Settings) -> Iterator[Session]:
    """A session on the migrated database; the engine is disposed of afterwards."""
    from fleet_server.db import make_engine, make_session_factory, migrate

    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    sys.stderr.write(f"guichet fleet : {message}\n")
    return code


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from fleet_server.app import create_app
    from fleet_server.db import migrate
    from fleet_server.serving import uvicorn_config

    migrate(settings.database_url)
    host = os.environ.get("GUICHET_HOST", DEFAULT_HOST)
    # log_config=None keeps our JSON logging instead of uvicorn's own configuration.
    config = uvicorn_config(create_app(settings), host=host, port=args.port, log_config=None)
    gc.freeze()  # what start-up built lives on: out of every collection (docs/decisions.md)
    uvicorn.Server(config).run()
    return EXIT_OK


def _ingest(settings: Settings, _args: argparse.Namespace) -> int:
    from fleet_server.mqtt import ingest

    return ingest.run_standalone(settings)


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from fleet_server.db import migrate

    migrate(settings.database_url)
    sys.stdout.write("Base de données à jour.\n")
    return EXIT_OK


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mot de passe : ")
    if getpass.getpass("Confirmez le mot de passe : ") != first:
        return None
    return first


def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    from fleet_server.models import Service
    from fleet_server.security import audit, auth
    from fleet_server.security.roles import Role

    password = _read_password(args.password_stdin)
    if password is None:
        return _fail("les deux mots de passe diffèrent")
    if args.role == Role.AGENT and not args.service:
        return _fail("un agent répond pour un service : --service CODE", EXIT_USAGE)
    try:
        with _database(settings) as session:
            if args.service and session.get(Service, args.service) is None:
                return _fail(f"service inconnu « {args.service} »", EXIT_USAGE)
            auth.upsert_user(
                session,
                args.username,
                password,
                role=args.role,
                service=args.service,
                site=args.site,
            )
            audit.record(
                session, audit.SYSTEM_ACTOR, "user.create", args.username,
                role=args.role, service=args.service, site=args.site, via="cli",
            )  # fmt: skip
            session.commit()
    except auth.AuthError as exc:
        return _fail(str(exc), EXIT_USAGE)
    sys.stdout.write(f"Utilisateur « {args.username} » enregistré (rôle {args.role}).\n")
    return EXIT_OK


def _create_api_token(settings: Settings, args: argparse.Namespace) -> int:
    from fleet_server.security import audit, auth

    try:
        with _database(settings) as session:
            audit.record(
                session, audit.SYSTEM_ACTOR, "api_token.create", args.username,
                name=args.name, via="cli",
            )  # fmt: skip
            token = auth.create_api_token(session, args.username, args.name)
    except auth.AuthError as exc:
        return _fail(str(exc), EXIT_USAGE)
    sys.stdout.write(token + "\n")
    sys.stderr.write("Conservez ce jeton : il ne sera plus jamais affiché.\n")
    return EXIT_OK


def _counter_token(settings: Settings, args: argparse.Namespace) -> int:
    from fleet_server.calls import admin as calls_admin
    from fleet_server.security import audit

    try:
        with _database(settings) as session:
            audit.record(
                session, audit.SYSTEM_ACTOR, "device.call_token", args.device_id, via="cli"
            )
            token = calls_admin.new_call_token(session, args.device_id, create=True)
    except calls_admin.CallSetupError as exc:
        return _fail(str(exc), EXIT_USAGE)
    sys.stdout.write(token + "\n")
    sys.stderr.write("Jeton d'appel du guichet : il ne sera plus jamais affiché.\n")
    return EXIT_OK


def _create_service(settings: Settings, args: argparse.Namespace) -> int:
    from fleet_server.calls import admin as calls_admin
    from fleet_server.security import audit

    try:
        with _database(settings) as session:
            calls_admin.create_service(session, args.code, args.label)
            audit.record(
                session,
                audit.SYSTEM_ACTOR,
                "service.create",
                args.code,
                label=args.label,
                via="cli",
            )
            session.commit()
    except calls_admin.CallSetupError as exc:
        return _fail(str(exc), EXIT_USAGE)
    sys.stdout.write(f"Service « {args.label} » créé (code {args.code}).\n")
    return EXIT_OK
