"""Flag values of the `culturespa` command that name culturespa's own things (the paper's seeds,
the ways of asking); the flag types every entry point shares are in `culturespa.command_line`."""

from __future__ import annotations

import argparse

from culturespa.command_line import SEED_LIMIT


def seed_list(text: str) -> list[int]:
    """'42,41,40' -> [42, 41, 40]; 'paper' -> the paper's three seeds."""
    from culturespa.evaluation.run import PAPER_SEEDS

    if text.strip().lower() == "paper":
        return list(PAPER_SEEDS)
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = [-1]
    if not all(0 <= s < SEED_LIMIT for s in seeds):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected integers 0 <= seed < 2**32 separated by commas, "
            "or 'paper' (42,41,40)"
        )
    return list(dict.fromkeys(seeds))


def way_list(text: str) -> tuple[str, ...]:
    """'loglik,rev,gen,dist' -> the ways of asking, in the given order, without repeats; 'all'
    -> every way."""
    from culturespa.prompts.task_names import WAYS

    if text.strip().lower() == "all":
        return tuple(WAYS)
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in WAYS]
    if unknown or not names:
        what = f"unknown way {unknown[0]!r}" if unknown else "no way given"
        raise argparse.ArgumentTypeError(
            f"{text!r}: {what}; expected ways separated by commas from {', '.join(WAYS)}, or 'all'"
        )
    return tuple(dict.fromkeys(names))
