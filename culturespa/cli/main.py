"""Entry point of the `culturespa` command: dispatches to one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from culturespa import __version__
from culturespa.command_line import ArgumentParser
from culturespa.errors import CulturespaError
from culturespa.text_cells import terminal_text

# Each module defines `register(subparsers)`, which adds its parser and sets `func`. A subcommand
# that parses its own arguments (`train`: TRL's parser, built when it runs) sets
# `forwards_arguments` and finds them in `forwarded_arguments`.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "culturespa.cli.score",
    "culturespa.cli.baselines",
    "culturespa.cli.build_data",
    "culturespa.cli.model",
    "culturespa.cli.report",
    "culturespa.cli.demo",
    "culturespa.loop.main",
    "culturespa.cli.tasks",
    "culturespa.cli.survey",
    "culturespa.cli.train",
    "culturespa.cli.merge",
)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="culturespa",
        description="Cultural alignment of LLMs on the World Values Survey (CultureSPA).",
    )
    parser.add_argument("--version", action="version", version=f"culturespa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "forwards_arguments", False):
        args.forwarded_arguments = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except CulturespaError as exc:
        print(f"culturespa {args.command}: error: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"culturespa {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
