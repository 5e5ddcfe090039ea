"""The loop's summary of every way of asking: the paper's way beside the permuted and calibrated
ways, for the base model and each adapter, with paired changes against the base model asked the
same way and which listed option the answers are (issue 25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from culturespa.loop.config import LoopConfig
from culturespa.loop.summary_cells import (
    ROW_NAMES,
    ci_text,
    first_group,
    position_cells,
    row_of,
    x100_text,
)

if TYPE_CHECKING:
    from culturespa.report.rows import Row


def rows_by_way(config: LoopConfig, report) -> dict[str, dict[str, Row]]:
    """way -> adapter kind -> the report's row, for every way of asking the config evaluates
    with its first group's template (the paper's way and the debiased ways side by side)."""
    from culturespa.prompts.task_names import parse_task_name

    template, _ = first_group(config)
    ways = [parse_task_name(g).way for g in config.eval_groups]
    ways = [w for w in dict.fromkeys(ways) if w]
    table: dict[str, dict[str, Row]] = {}
    for way in ways:
        found = {}
        for kind in config.models:
            matches = [r for r in report.rows if row_of(kind, template, way)(r)]
            if matches:
                found[kind] = matches[0]
        if found:
            table[way] = found
    return table


def way_changes(ways: dict[str, dict[str, Row]], seed: int) -> dict[str, dict[str, object]]:
    """Per way, each adapter's paired change against the base model asked the same way."""
    from culturespa.report import analysis

    return {
        way: {
            kind: analysis.paired_change(rows["base"], row, seed=seed)
            for kind, row in rows.items()
            if kind != "base" and "base" in rows
        }
        for way, rows in ways.items()
    }


WAY_NAMES = {
    "loglik": "the paper's way (options forward)",
    "rev": "options reversed",
    "perm": "permuted orders (position pooled out)",
    "cal": "calibrated (content-free prompt divided out)",
    "gen": "sampled reply (the paper's generation)",
    "dist": "stated distribution",
}


def way_lines(countries: list[str], ways: dict, changes: dict) -> list[str]:
    """Every way of asking side by side: each model's AVG and culture-specific score, its paired
    change against the base model asked the same way, and which listed option its answers are."""
    from culturespa.report.analysis import listed_positions
    from culturespa.text_cells import markdown_row

    lines = [
        "",
        "## Every way of asking (the listed place taken out: permuted and calibrated)\n",
        "| way | model | AVG [95% CI] | culture-specific | change vs base [95% CI] "
        "| 1st | 2nd | 3rd | 4th | 5th or later | no option |",
        "|---" * 11 + "|",
    ]
    for way, rows in ways.items():
        for kind, row in rows.items():
            change = changes[way].get(kind)
            moved = ci_text(*change.average) if change and change.average else ""
            places = position_cells(listed_positions(row.answers)) if row.answers else [""] * 6
            lines.append(
                markdown_row(
                    [WAY_NAMES.get(way, way), ROW_NAMES[kind],
                     ci_text(row.avg, row.avg_low, row.avg_high), x100_text(row.specific_avg), moved,
                     *places]
                )
            )  # fmt: skip
    lines += [
        "",
        f"Countries: {', '.join(countries)}. A gain that holds on the permuted and calibrated "
        "rows is not the listed place's; one that appears only on the paper's way is.",
    ]
    return lines
