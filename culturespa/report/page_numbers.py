"""Values read from `leaderboard.json` for the page: numbers that may be missing or malformed.

JSON from disk may hold anything; each reader returns the value it expects or None (or a dash for
text), so one odd field blanks one cell instead of breaking the page.
"""

from __future__ import annotations

import math
from typing import Any


def json_number(value: Any) -> float | None:
    """A finite number from JSON, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def x100_text(value: float | None, digits: int = 1) -> str:
    """A score x100 as text ('71.3'), or '–' where there is none."""
    return "–" if value is None else f"{100 * value:.{digits}f}"


def json_interval(pair: Any) -> tuple[float | None, float | None]:
    """A 95% interval `[low, high]` from JSON as two numbers, else (None, None)."""
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return json_number(pair[0]), json_number(pair[1])
    return None, None


def json_count(value: Any) -> int | None:
    """A count from JSON (a non-negative int), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def count_text(value: Any) -> str:
    """A count for a table cell: the number, or '–' where the JSON holds none."""
    count = json_count(value)
    return "–" if count is None else str(count)


def runs_count(value: Any) -> int:
    """`runs` as a count (rows merged from several seeds carry it); one file per cell otherwise."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return 1
