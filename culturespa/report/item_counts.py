"""How many items a row was asked, next to the items its survey reference rows are scored on.

A run with `--limit 3` and no sample logs scores a model on 3 items per country, while the
reference rows (which take the items the sample logs name, else every item with survey data)
are scored on all of them. Such a row is marked wherever it is shown: a note, an `items` column
in the Markdown, CSV and terminal tables, and a badge on the page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from culturespa.report.run_scores import Notes, TaskResult
from culturespa.survey.items import items_with_data

if TYPE_CHECKING:
    from culturespa.report.rows import Row


def items_asked(task: TaskResult, country: str, limit: Any) -> int:
    """Items of the country's survey a task asked: those in its sample log, else the run's
    `--limit` (a count, or a fraction below 1 as lm-eval reads it), else all of them."""
    surveyed = items_with_data(country)
    if task.answers is not None:
        known = set(surveyed)
        return sum(qid in known for qid in task.answers)
    number = isinstance(limit, (int, float)) and not isinstance(limit, bool)
    if number and math.isfinite(limit) and limit > 0:
        asked = math.ceil(len(surveyed) * limit) if limit < 1 else int(limit)
        return min(asked, len(surveyed))
    return len(surveyed)


def reference_items(models: Iterable[Row]) -> dict[str, set[str] | None]:
    """Per country, the items the reference rows are scored on: those the models' sample logs
    name, or None for every item with survey data (no log for that country)."""
    logged: dict[str, set[str] | None] = {}
    for row in models:
        for cc in row.cells:
            logged.setdefault(cc, None)
        for cc, answers in row.answers.items():
            logged[cc] = (logged.get(cc) or set()) | set(answers)
    return logged


def reference_count(items: set[str] | None, country: str) -> int:
    """How many of `items` (None: all) have survey data for the country."""
    surveyed = items_with_data(country)
    return len(surveyed) if items is None else sum(q in items for q in surveyed)


def mark_fewer_items(models: list[Row], notes: Notes) -> None:
    """Set each model row's `reference_items` (the reference rows' items over the row's
    countries) and add a note for every row asked fewer items than that."""
    logged = reference_items(models)
    for row in models:
        row.reference_items = sum(reference_count(logged.get(cc), cc) for cc in row.cells)
        if row.n_items is not None and row.n_items < row.reference_items:
            notes.add(
                f"{row.method}: scored on {row.n_items} items, the survey reference rows on "
                f"{row.reference_items} (a run with --limit and no sample logs?); its scores are "
                "not comparable with theirs"
            )


def items_text(n_items: int | None, reference: int | None) -> str:
    """'750', or '9 of 750' for a row asked fewer items than its reference rows."""
    if n_items is None:
        return ""
    if reference is not None and n_items < reference:
        return f"{n_items} of {reference}"
    return str(n_items)
