"""What the loop's summary shows in its cells, and how it finds the report's rows: by their
identity (adapter kind, template, way of asking), never by their label."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from culturespa.loop.config import LoopConfig

if TYPE_CHECKING:
    from culturespa.report.rows import Row


def first_group(config: LoopConfig) -> tuple[str, str]:
    """(template, way) of the config's first task group: the rows the summary compares."""
    from culturespa.prompts.task_names import parse_task_name

    parsed = parse_task_name(config.eval_groups[0])
    return parsed.template, parsed.way


def row_of(kind: str, template: str, way: str) -> Callable[[Row], bool]:
    """A test of a report row's identity: a model row of this adapter kind, template and way."""
    return lambda row: (
        not row.is_reference
        and row.adapter_kind == kind
        and row.template == template
        and row.way == way
    )


ROW_NAMES = {"base": "Base model", "joint": "CultureSPA joint", "specific": "CultureSPA specific"}


def x100_text(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.2f}"


def ci_text(value: float, low: float, high: float) -> str:
    if math.isnan(low):
        return x100_text(value)
    return f"{x100_text(value)} [{x100_text(low)}, {x100_text(high)}]"


def position_cells(counts: dict[int | None, int]) -> list[str]:
    """Shares of the 1st, 2nd, 3rd, 4th and later listed option, and of no option."""
    total = max(1, sum(counts.values()))
    later = sum(n for p, n in counts.items() if p is not None and p >= 5)
    shares = [counts.get(p, 0) for p in (1, 2, 3, 4)] + [later, counts.get(None, 0)]
    return [f"{100 * n / total:.1f}%" for n in shares]
