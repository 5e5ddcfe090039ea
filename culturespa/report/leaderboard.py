"""The ranked leaderboard: rows in rank order, formatted as Markdown, CSV and JSON records."""

from __future__ import annotations

import math

from culturespa.report.item_counts import items_text
from culturespa.report.rows import Row, countries_in
from culturespa.scoring.baselines import RULES
from culturespa.survey.countries import in_paper_average
from culturespa.text_cells import csv_text, markdown_row


def rank_rows(rows: list[Row]) -> list[Row]:
    """Model rows with more of the 18 countries first, then by the average, best first; rows
    without an average (no score) after them, unranked; reference rows last, in the rules'
    order, unranked."""
    models = [r for r in rows if not r.is_reference]
    references = [r for r in rows if r.is_reference]
    ranked = sorted(
        models,
        key=lambda r: (not math.isfinite(r.avg), -r.n_avg, -r.avg if math.isfinite(r.avg) else 0),
    )
    return ranked + sorted(references, key=lambda r: list(RULES).index(r.rule))


def score_text(value: float, digits: int = 1) -> str:
    """A score x100 as text ('71.3'), or '–' where there is none."""
    return f"{100 * value:.{digits}f}" if math.isfinite(value) else "–"


def _with_ci(value: float, low: float, high: float) -> str:
    if not math.isfinite(low):
        return score_text(value)
    return f"{score_text(value)} [{score_text(low)}, {score_text(high)}]"


def runs_text(row: Row) -> str:
    """'1', or '3 (sd 0.42)' for a row averaged over 3 runs (sd of the AVG, x100)."""
    if row.n_runs == 1:
        return "1"
    spread = row.avg_spread
    return f"{row.n_runs}" + ("" if math.isnan(spread) else f" (sd {100 * spread:.2f})")


def coverage_text(row: Row, digits: int = 0) -> str:
    """'98%', with the number of out-of-range answers when there are any."""
    text = score_text(row.coverage, digits) + ("%" if not math.isnan(row.coverage) else "")
    return text + (f" ({row.out_of_range} out of range)" if row.out_of_range else "")


def ranks(rows: list[Row]) -> list[int | None]:
    """1, 2, ... for model rows in order; None for reference rows and for rows without a finite
    AVG (no score: never ranked)."""
    out, rank = [], 0
    for row in rows:
        if row.is_reference or not math.isfinite(row.avg):
            out.append(None)
        else:
            rank += 1
            out.append(rank)
    return out


def leaderboard_markdown(rows: list[Row]) -> str:
    """The ranked leaderboard as a Markdown table (x100; 95% bootstrap intervals in brackets);
    survey reference rows follow the models, unranked (rank "ref")."""
    countries = countries_in(rows)
    with_items = any(row.fewer_items for row in rows)
    head = [
        "rank", "model", "template", "AVG", "specific", "countries", "runs", "coverage",
        *(["items"] if with_items else []), *countries,
    ]  # fmt: skip
    lines = [markdown_row(head), "|" + "---|" * len(head)]
    for rank, row in zip(ranks(rows), rows):
        template = row.template_label
        cells = [
            str(rank) if rank is not None else ("ref" if row.is_reference else "–"),
            f"*{row.label}*" if row.is_reference else row.label,
            template,
            _with_ci(row.avg, row.avg_low, row.avg_high),
            score_text(row.specific_avg),
            f"{row.n_avg}/18",
            runs_text(row),
            coverage_text(row),
            *([items_text(row.n_items, row.reference_items)] if with_items else []),
        ]
        for cc in countries:
            cell = row.cells.get(cc)
            cells.append(_with_ci(cell.value, cell.ci_low, cell.ci_high) if cell else "")
        lines.append(markdown_row(cells))
    return "\n".join(lines) + "\n"


def leaderboard_records(rows: list[Row], metric: str) -> list[dict]:
    """Plain records (0..1 scale) for JSON."""
    records = []
    for rank, row in zip(ranks(rows), rows):
        records.append(
            {
                "rank": rank,
                "kind": "reference" if row.is_reference else "model",
                "rule": row.rule,
                "model": row.label,
                "template": row.template,
                "method": row.method,
                "way": row.way or None,
                "generation": row.generation,
                "metric": metric,
                "average": _none(row.avg),
                "average_ci": [_none(row.avg_low), _none(row.avg_high)],
                "average_over": in_paper_average(row.cells),
                "runs": row.n_runs,
                "run_averages": [_none(v) for v in row.run_averages],
                "average_run_sd": _none(row.avg_spread),
                "specific_average": _none(row.specific_avg),
                "coverage": _none(row.coverage),
                "out_of_range": row.out_of_range,
                "n_items": row.n_items,
                "reference_items": None if row.is_reference else row.reference_items,
                "countries": {
                    cc: {
                        "score": _none(c.value),
                        "ci": [_none(c.ci_low), _none(c.ci_high)],
                        "coverage": _none(c.coverage),
                        "out_of_range": c.out_of_range,
                        "runs": [_none(v) for v in c.runs] or [_none(c.value)],
                        "run_sd": _none(c.spread),
                        "specific": _none(c.specific),
                        "n_items": c.n_items,
                    }
                    for cc, c in row.cells.items()
                },
                "sources": row.sources,
            }
        )
    return records


def _none(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def leaderboard_csv(rows: list[Row]) -> str:
    """One line per row; x100; per country the score, interval and coverage."""
    countries = countries_in(rows)
    head = [
        "rank",
        "kind",
        "model",
        "template",
        "way",
        "generation",
        "avg",
        "avg_ci_low",
        "avg_ci_high",
        "specific_avg",
        "n_countries_in_avg",
        "runs",
        "avg_run_sd",
        "coverage",
        "out_of_range",
    ]
    for cc in countries:
        head += [cc, f"{cc}_ci_low", f"{cc}_ci_high", f"{cc}_coverage", f"{cc}_run_sd"]
    head += ["n_items", "reference_items"]
    lines = []
    for rank, row in zip(ranks(rows), rows):
        line = [
            "" if rank is None else rank,
            "reference" if row.is_reference else "model",
            row.label,
            row.rule if row.is_reference else row.template,
            row.way,
            int(row.generation),
            _csv(row.avg),
            _csv(row.avg_low),
            _csv(row.avg_high),
            _csv(row.specific_avg),
            row.n_avg,
            row.n_runs,
            _csv(row.avg_spread),
            _csv(row.coverage),
            row.out_of_range,
        ]
        for cc in countries:
            c = row.cells.get(cc)
            line += (
                [_csv(c.value), _csv(c.ci_low), _csv(c.ci_high), _csv(c.coverage), _csv(c.spread)]
                if c
                else [""] * 5
            )
        line += [row.n_items, None if row.is_reference else row.reference_items]
        lines.append(line)
    return csv_text(head, lines)


def _csv(value: float) -> str:
    return f"{100 * value:.2f}" if math.isfinite(value) else ""
