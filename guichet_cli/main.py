"""The ``guichet`` command. Each side registers its own subcommands (``appliance.cli``,
``fleet_server.cli``) and imports itself lazily, so the appliance's commands never load the
server's dependencies and vice versa; the demo, which runs both, lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from appliance import cli as appliance_cli
from fleet_server import cli as fleet_cli


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
        choices=["run", "press"],
        default="run",
        help="press: a counter's button",
    )
    demo.add_argument("counter", nargs="?", help="with press: the counter's id")
    demo.add_argument("--long", action="store_true", help="with press: a long press (hang up)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command in appliance_cli.COMMANDS:
        return appliance_cli.main(args)
    if args.command == "fleet":
        return fleet_cli.main(args)
    if args.command == "demo":
        from guichet_cli import demo

        if args.action == "press":
            from guichet_cli.demo_press import press

            if not args.counter:
                sys.stderr.write("guichet demo press COUNTER\n")
                return 2
            return press(demo.DEMO_DIR, args.counter, long=args.long)
        return demo.main(port=args.port)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
