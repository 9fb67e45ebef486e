"""``guichet fleet create-user`` / ``create-api-token`` and bad settings, as real processes."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from fleet_server.db import make_engine, make_session_factory
from fleet_server.security import auth

GUICHET = str(Path(sys.executable).with_name("guichet"))
PASSWORD = "un mot de passe assez long"


def guichet(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    return subprocess.run(
        [GUICHET, "fleet", *args],
        input=stdin,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_default_secret_outside_demo_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = guichet("migrate", env={"GUICHET_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "GUICHET_SECRET_KEY" in result.stderr


def test_invalid_value_names_its_variable(tmp_path: Path) -> None:
    env = {"GUICHET_DEMO": "1", "GUICHET_STALENESS_CHECK_S": "-1"}
    result = guichet("migrate", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "guichet fleet : réglages invalides : GUICHET_STALENESS_CHECK_S"
    )


def test_create_user_and_token(db_url: str) -> None:
    env = {"GUICHET_DATABASE_URL": db_url, "GUICHET_SECRET_KEY": secrets.token_urlsafe(24)}
    created = guichet(
        "create-user",
        "marie",
        "--role",
        "auditor",
        "--password-stdin",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert "marie" in created.stdout

    too_short = guichet("create-user", "paul", "--password-stdin", env=env, stdin="court\n")
    assert too_short.returncode == 2
    assert "trop court" in too_short.stderr

    token_run = guichet("create-api-token", "marie", env=env)
    assert token_run.returncode == 0, token_run.stderr
    token = token_run.stdout.strip()
    assert token.startswith(auth.TOKEN_PREFIX)
    assert guichet("create-api-token", "personne", env=env).returncode == 2

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            user = auth.authenticate(session, "marie", PASSWORD)
            assert user is not None
            assert user.role == "auditor"
            owner = auth.user_for_token(session, token)
            assert owner is not None
            assert owner.username == "marie"
    finally:
        engine.dispose()


def test_one_shot_commands_print_only_what_was_asked(tmp_path: Path) -> None:
    """Issue 17: a dozen Alembic INFO lines came before the token. The first command on a
    fresh database migrates it, and still prints only its own line."""
    env = {
        "GUICHET_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3",
        "GUICHET_SECRET_KEY": secrets.token_urlsafe(24),
    }
    created = guichet("create-user", "marie", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "Utilisateur « marie » enregistré (rôle admin).\n"
    assert created.stderr == ""

    token_run = guichet("create-api-token", "marie", env=env)
    assert token_run.returncode == 0, token_run.stderr
    [token] = token_run.stdout.splitlines()
    assert token.startswith(auth.TOKEN_PREFIX)
    assert token_run.stderr == "Conservez ce jeton : il ne sera plus jamais affiché.\n"

    verbose = guichet("migrate", env=env | {"GUICHET_LOG_LEVEL": "INFO"})
    assert verbose.returncode == 0, verbose.stderr
    assert "alembic" in verbose.stderr  # asked for: the log is still there
