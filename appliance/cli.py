"""``guichet appliance …`` and ``guichet selftest``: the counter's subcommands. Registered by
``guichet_cli.main``; each action imports the appliance lazily, so ``guichet fleet …`` never
loads the counter's dependencies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

COMMANDS = ("appliance", "selftest")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``appliance {run,check-config,enrol}`` and ``selftest`` to the ``guichet`` parser."""
    appliance = sub.add_parser("appliance", help="the counter's agent").add_subparsers(
        dest="action", required=True
    )
    run = appliance.add_parser("run", help="run the counter's agent")
    run.add_argument("--config", type=Path, required=True, help="the counter's TOML file")
    check = appliance.add_parser("check-config", help="validate a counter's TOML file")
    check.add_argument("--config", type=Path, required=True)
    enrol = appliance.add_parser("enrol", help="enrol the counter with its fleet server")
    enrol.add_argument("--config", type=Path, required=True)

    selftest = sub.add_parser("selftest", help="the technician's self-test of a counter")
    selftest.add_argument(
        "--config", type=Path, default=None, help="the counter's TOML (default: first boot's)"
    )
    selftest.add_argument("--rapport", type=Path, default=None, help="also write the report here")


def main(args: argparse.Namespace) -> int:
    if args.command == "selftest":
        from appliance import selftest

        return selftest.main(args.config, report_path=args.rapport)
    from appliance.process import check_config, enrol_command
    from appliance.process import main as run_appliance

    if args.action == "check-config":
        return check_config(args.config)
    if args.action == "enrol":
        return enrol_command(args.config)
    return run_appliance(args.config)
