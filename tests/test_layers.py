"""The import contracts (pyproject's ``[tool.importlinter]``, run by ``./run lint``) hold on
the tree, and fail on a deliberate violation: a copy of the shared core in a temporary
directory, given one forbidden import, breaks the contract that names it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
TIMEOUT_S = 120


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def core_copy(tmp_path: Path) -> Path:
    """The real ``guichet`` package and the contracts; the other root packages empty."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    shutil.copytree(ROOT / "guichet", tmp_path / "guichet")
    named = {
        module
        for contract in config["contracts"]
        for key in ("source_modules", "forbidden_modules")
        for module in contract.get(key, [])
    }
    for module in sorted(set(config["root_packages"]) | named):
        if module.split(".")[0] not in config["root_packages"] or module.startswith("guichet."):
            continue  # an outside library, or part of the real shared core
        package = tmp_path.joinpath(*module.split("."))
        if not package.exists():
            package.mkdir(parents=True)
            (package / "__init__.py").write_text("")
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    # an exception that no longer matches anything must be deleted, not left to rot
    assert "No matches for ignored import" not in result.stdout, result.stdout


def test_the_clean_copy_keeps_every_contract(core_copy: Path) -> None:
    result = _lint(core_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("violation", "broken"),
    [
        ("from appliance import errors\n", "The shared core (guichet) imports neither side"),
        ("import fleet_server\n", "The shared core (guichet) imports neither side"),
        ("import guichet_cli\n", "The shared core (guichet) imports neither side"),
        ("def show() -> None:\n    import pygame\n", "Hardware libraries are imported only"),
        ("import gpiozero\n", "Hardware libraries are imported only"),
        ("from guichet import violation_b\n", "No import cycles"),
    ],
    ids=["appliance", "fleet_server", "cli", "pygame-lazily", "gpiozero", "cycle"],
)
def test_a_violating_import_breaks_its_contract(
    core_copy: Path, violation: str, broken: str
) -> None:
    (core_copy / "guichet" / "violation_a.py").write_text(violation)
    (core_copy / "guichet" / "violation_b.py").write_text("from guichet import violation_a\n")
    result = _lint(core_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    # "<contract name> KEPT" or "<contract name> BROKEN", maybe followed by "(n warnings)"
    verdicts = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(broken) and (" KEPT" in line or " BROKEN" in line)
    ]
    assert len(verdicts) == 1, result.stdout
    assert " BROKEN" in verdicts[0], result.stdout


def test_the_servers_domain_importing_its_web_layer_breaks_its_contract(core_copy: Path) -> None:
    (core_copy / "fleet_server" / "mqtt" / "violation.py").write_text(
        "from fleet_server.web import deps\n"
    )
    (core_copy / "fleet_server" / "web" / "deps.py").write_text("")
    result = _lint(core_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The server's domain does not import its web layer or API BROKEN" in result.stdout


def test_a_cycle_between_the_servers_packages_breaks_the_no_cycles_contract(
    core_copy: Path,
) -> None:
    # calls → security → calls: what the call tokens once did, through enrolment
    (core_copy / "fleet_server" / "calls" / "admin.py").write_text(
        "from fleet_server.security import auth\n"
    )
    (core_copy / "fleet_server" / "security" / "auth.py").write_text("")
    (core_copy / "fleet_server" / "security" / "enrolment.py").write_text(
        "from fleet_server.calls import admin\n"
    )
    result = _lint(core_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No import cycles between the modules of any package BROKEN" in result.stdout
    assert "No cycles are allowed in fleet_server." in result.stdout
