"""The paper's comparison table: methods by countries and AVG, as Markdown, CSV and terminal text."""

from __future__ import annotations

import math

from culturespa.prompts.task_names import WAYS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.item_counts import items_text
from culturespa.report.leaderboard import score_text
from culturespa.report.rows import Row, countries_in
from culturespa.scoring.baselines import RULES
from culturespa.text_cells import csv_text, markdown_row, terminal_text


def paper_order(rows: list[Row]) -> list[Row]:
    """Rows grouped by model in first-seen order, then by way of asking, templates in the paper's
    order within a way; survey reference rows last, in the rules' order."""
    models = [r for r in rows if not r.is_reference]
    labels = list(dict.fromkeys(r.label for r in models))
    order, ways = list(TEMPLATES), list(WAYS)
    ordered = sorted(
        models,
        key=lambda r: (labels.index(r.label), ways.index(r.way), order.index(r.template)),
    )
    return ordered + sorted(
        (r for r in rows if r.is_reference), key=lambda r: list(RULES).index(r.rule)
    )


def comparison_method(row: Row) -> str:
    """The row's method, with 'mean of N runs' when runs were averaged (as the paper does);
    reference rows read 'Reference: <rule>'."""
    if row.is_reference:
        return f"Reference: {row.template_label}"
    return row.method + (f", mean of {row.n_runs} runs" if row.n_runs > 1 else "")


def comparison_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """The paper's table: methods by countries and AVG, x100 with 2 decimals, plus coverage.

    A column `out of range` (answers that are no option of their item, scored as in the paper)
    is added when any row has such answers, and a column `items` ('9 of 750') when a row was
    asked fewer items than its reference rows are scored on.
    """
    rows = paper_order(rows)
    countries = countries_in(rows)
    with_range = any(row.out_of_range for row in rows)
    with_items = any(row.fewer_items for row in rows)
    head = [
        "method", *countries, "AVG", "specific", "coverage",
        *(["out of range"] if with_range else []), *(["items"] if with_items else []),
    ]  # fmt: skip
    body = []
    for row in rows:
        line = [comparison_method(row)]
        line += [score_text(row.cells[cc].value, 2) if cc in row.cells else "" for cc in countries]
        line += [
            score_text(row.avg, 2),
            score_text(row.specific_avg, 2),
            score_text(row.coverage, 1) + ("%" if not math.isnan(row.coverage) else ""),
        ]
        if with_range:
            line.append(str(row.out_of_range))
        if with_items:
            line.append(items_text(row.n_items, row.reference_items))
        body.append(line)
    return head, body


def comparison_markdown(rows: list[Row]) -> str:
    """The paper's table in Markdown (names made inert by `culturespa.text_cells`)."""
    head, body = comparison_table(rows)
    lines = [markdown_row(head), "|" + "---|" * len(head)]
    lines += [markdown_row(line) for line in body]
    return "\n".join(lines) + "\n"


def comparison_csv(rows: list[Row]) -> str:
    head, body = comparison_table(rows)
    return csv_text(head, [[cell.rstrip("%").replace("–", "") for cell in line] for line in body])


def comparison_text(rows: list[Row]) -> str:
    """The comparison table aligned for a terminal (control characters of names removed)."""
    head, body = comparison_table(rows)
    body = [[terminal_text(cell) for cell in line] for line in body]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = lambda line: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
    )
    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body)]) + "\n"
