"""The ``guichet`` command. Each side registers its own subcommands (``appliance.cli``,
``fleet_server.cli``) and imports itself lazily, so the appliance's commands never load the
server's dependencies and vice versa; the demo, which runs both, lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from appliance import cli as appliance_cli
from fleet_server import cli as fleet_cli
from guichet_cli.output import complain, say

DEMO_ACTIONS = ("run", "press", "skip", "stop", "start")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guichet", description="Guichet Proche")
    sub = parser.add_subparsers(dest="command", required=True)
    appliance_cli.register(sub)
    fleet_cli.register(sub)

    demo = sub.add_parser("demo", help="fleet server, broker and four simulated counters")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "action",
        nargs="?",
        choices=DEMO_ACTIONS,
        default="run",
        help="press: a counter's button; skip: its questionnaire; stop/start: the counter",
    )
    demo.add_argument("counter", nargs="?", help="with press, skip, stop, start: the counter's id")
    demo.add_argument("--long", action="store_true", help="with press: a long press (hang up)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command in appliance_cli.COMMANDS:
        return appliance_cli.main(args)
    if args.command == "fleet":
        return fleet_cli.main(args)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover - argparse rejects other commands


def _demo(args: argparse.Namespace) -> int:
    from guichet_cli.demo_state import DEMO_DIR

    if args.action == "run":
        from guichet_cli import demo

        return demo.main(port=args.port)
    if not args.counter:
        complain(f"guichet demo {args.action} COUNTER")
        return 2
    if args.action in ("press", "skip"):
        from guichet_cli import demo_press

        if args.action == "skip":
            return demo_press.skip(DEMO_DIR, args.counter)
        return demo_press.press(DEMO_DIR, args.counter, long=args.long)
    from guichet_cli.demo_control import ask
    from guichet_cli.demo_state import control_socket

    reply = ask(control_socket(DEMO_DIR), args.action, args.counter)
    if reply is None:
        complain("La démonstration ne tourne pas ici (lancez ./run demo).")
        return 2
    (say if reply.ok else complain)(reply.message)
    return 0 if reply.ok else 1


if __name__ == "__main__":
    sys.exit(main())
