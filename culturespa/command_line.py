"""Command-line parsing every entry point shares (the `culturespa` command, the recipes, the task
folder's generator, the scripts): one-line errors and typed flag values, a utility of no layer.

A flag is turned into its typed value here, at the boundary; a value that is not allowed is one
line naming the flag, the value and what is allowed, with exit code 2 (argparse's own code for a
usage error), before anything is loaded or written.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: message (see prog --help)`, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give an existing parser (e.g. TRL's TrlParser) the one-line error of `ArgumentParser`."""
    parser.error = ArgumentParser.error.__get__(parser)  # type: ignore[method-assign]
    return parser


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 0")
    return value


SEED_LIMIT = 2**32
"""Seeds are 0 <= seed < 2**32: numpy's and torch's generators take no other."""


def seed(text: str) -> int:
    """A random seed: an integer 0 <= seed < 2**32."""
    value = _integer(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer 0 <= seed < 2**32")
    return value


def batch_size(text: str) -> int | str:
    """An integer >= 1, 'auto' or 'auto:N' (lm-eval's forms)."""
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) > 0):
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an integer >= 1, 'auto' or 'auto:N'"
        ) from None


def item_limit(text: str) -> int | float:
    """lm-eval's --limit: a whole number of items >= 1, or a finite fraction in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or (value > 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a number of items >= 1 or a fraction between 0 and 1"
        )
    return int(value) if value >= 1 else value


def exit_with_error(prog: str, message: str) -> int:
    """Print `prog: error: message` as one line on stderr; return exit code 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2
