"""The benchmark's parts by name, and the helpers every part uses.

A part is a function of the run's config (config.json) that returns its result; `parts.py` runs
one by name in a process of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

PARTS: dict[str, Callable[[dict], dict]] = {}


def part(name: str):
    """Register a part under `name`."""

    def register(func: Callable[[dict], dict]) -> Callable[[dict], dict]:
        PARTS[name] = func
        return func

    return register


def spread(seq: Sequence, n: int) -> list:
    """n elements evenly spread over seq, in order (all of it if n >= len(seq))."""
    if n >= len(seq):
        return list(seq)
    return [seq[(i * len(seq)) // n] for i in range(n)]


def set_threads(cfg: dict) -> None:
    """Set torch's threads to the config's `threads` (0: torch's default)."""
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
