"""The ``guichet`` command. Each subcommand imports its side lazily, so the appliance's
commands never load the server's dependencies and vice versa."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guichet", description="Guichet Proche")
    sub = parser.add_subparsers(dest="command", required=True)

    appliance = sub.add_parser("appliance", help="the counter's agent").add_subparsers(
        dest="action", required=True
    )
    run = appliance.add_parser("run", help="run the counter's agent")
    run.add_argument("--config", type=Path, required=True, help="the counter's TOML file")
    check = appliance.add_parser("check-config", help="validate a counter's TOML file")
    check.add_argument("--config", type=Path, required=True)
    enrol = appliance.add_parser("enrol", help="enrol the counter with its fleet server")
    enrol.add_argument("--config", type=Path, required=True)

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

    selftest = sub.add_parser("selftest", help="the technician's self-test of a counter")
    selftest.add_argument(
        "--config", type=Path, default=None, help="the counter's TOML (default: first boot's)"
    )
    selftest.add_argument("--rapport", type=Path, default=None, help="also write the report here")

    demo = sub.add_parser("demo", help="fleet server, broker and four simulated counters")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "action",
        nargs="?",
        choices=["run", "press"],
        default="run",
        help="press: a counter's button",
    )
    demo.add_argument("counter", nargs="?", help="with press: the counter's id")
    demo.add_argument("--long", action="store_true", help="with press: a long press (hang up)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "appliance":
        from appliance.app import check_config
        from appliance.app import main as run_appliance

        if args.action == "check-config":
            return check_config(args.config)
        if args.action == "enrol":
            from appliance.app import enrol_command

            return enrol_command(args.config)
        return run_appliance(args.config)
    if args.command == "fleet":
        from fleet_server.cli import main as fleet_main

        return fleet_main(args)
    if args.command == "selftest":
        from appliance import selftest

        return selftest.main(args.config, report_path=args.rapport)
    if args.command == "demo":
        from guichet import demo

        if args.action == "press":
            from guichet.demo_press import press

            if not args.counter:
                sys.stderr.write("guichet demo press COUNTER\n")
                return 2
            return press(demo.DEMO_DIR, args.counter, long=args.long)
        return demo.main(port=args.port)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
