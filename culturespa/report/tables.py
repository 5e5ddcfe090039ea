"""Leaderboard rows from loaded runs: merge runs, bootstrap intervals, rank, format as MD/CSV/JSON."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from culturespa.countries import ALL_COUNTRIES, PAPER_COUNTRIES
from culturespa.prompts import TEMPLATES
from culturespa.report.loading import Notes, RunScores, TaskResult
from culturespa.scoring import (
    alignment_of,
    alignment_replicates,
    bootstrap_indices,
    collect_scored_items,
    percentile_interval,
)
from culturespa.survey import items_with_data

N_RESAMPLES = 1000
LEVEL = 0.95


@dataclass
class Cell:
    """One country's score in one row (0..1 scale), with interval and coverage when known."""

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    coverage: float = math.nan
    replicates: np.ndarray | None = None
    source: str = ""


@dataclass
class Row:
    """One model/run and template: a score per country, merged over the runs that hold it."""

    label: str
    template: str
    generation: bool
    cells: dict[str, Cell] = field(default_factory=dict)
    answers: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    avg: float = math.nan
    avg_low: float = math.nan
    avg_high: float = math.nan
    n_avg: int = 0

    @property
    def method(self) -> str:
        """'SmolLM2-135M-Instruct | Culture-aware (P1)' (generation tasks marked)."""
        name = TEMPLATES[self.template].label + (", generated" if self.generation else "")
        return f"{self.label} | {name}"

    @property
    def coverage(self) -> float:
        values = [c.coverage for c in self.cells.values() if not math.isnan(c.coverage)]
        return float(np.mean(values)) if values else math.nan


def country_alignment(
    answers: dict[str, int | None], country: str, n_resamples: int, seed: int
) -> tuple[float, np.ndarray | None, float]:
    """The paper's score from per-item answers, its bootstrap replicates, and coverage."""
    rows = collect_scored_items(answers, country)
    # Coverage over the logged items that have survey data (a --limit run asks fewer items).
    surveyed = set(items_with_data(country))
    asked = sum(1 for qid in answers if qid in surveyed)
    coverage = len(rows) / asked if asked else math.nan
    if not rows:
        return math.nan, None, coverage
    return alignment_of(rows), alignment_replicates(rows, n_resamples, seed), coverage


def mean_replicates(values: list[float], n_resamples: int, seed: int) -> np.ndarray | None:
    """Bootstrap replicates of the mean of per-item values."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    return arr[bootstrap_indices(arr.size, n_resamples, seed)].mean(axis=1)


def _interval(replicates: np.ndarray | None) -> tuple[float, float]:
    return percentile_interval(replicates, LEVEL)


def task_cell(task: TaskResult, metric: str, seed: int, notes: Notes, source: str) -> Cell | None:
    """A task's cell: the results file's value, with an interval from its sample log if logged."""
    value = task.metrics.get(metric)
    if value is None:
        return None
    cell = Cell(value=value, coverage=task.metrics.get("coverage", math.nan), source=source)
    if task.answers is not None and metric == "alignment":
        recomputed, cell.replicates, coverage = country_alignment(
            task.answers, task.country, N_RESAMPLES, seed
        )
        if math.isnan(cell.coverage):
            cell.coverage = coverage
        if not math.isnan(recomputed) and abs(recomputed - value) > 5e-3:
            notes.add(
                f"{source}: {task.task}: alignment from the sample log ({recomputed:.4f}) differs "
                f"from the results file ({value:.4f}); the table shows the results file's value"
            )
    elif task.item_metrics:
        per_item = [m[metric] for m in task.item_metrics.values() if metric in m]
        cell.replicates = mean_replicates(per_item, N_RESAMPLES, seed)
    if math.isnan(cell.coverage) and not task.generation:
        cell.coverage = 1.0  # a log-likelihood choice always names an option
    cell.ci_low, cell.ci_high = _interval(cell.replicates)
    if cell.replicates is None and task.logged_ci is not None and metric == "alignment":
        cell.ci_low, cell.ci_high = task.logged_ci
    return cell


def build_rows(runs: list[RunScores], metric: str, notes: Notes, seed: int = 0) -> list[Row]:
    """Merge runs into rows keyed by model label and template; later files win on duplicates."""
    rows: dict[tuple[str, str, bool], Row] = {}
    for run in sorted(runs, key=lambda r: (r.date, str(r.source))):
        for task in run.tasks:
            key = (run.label, task.template, task.generation)
            row = rows.setdefault(key, Row(run.label, task.template, task.generation))
            cell = task_cell(
                task, metric, seed + ALL_COUNTRIES.index(task.country), notes, str(run.source)
            )
            if cell is None:
                notes.add(f"{run.source}: task {task.task} has no {metric!r} metric; left out")
                continue
            if task.country in row.cells:
                earlier = Path(row.cells[task.country].source)
                notes.add(
                    f"{task.task} of {run.label} is in {earlier.parent.name}/{earlier.name} and "
                    f"{run.source.parent.name}/{run.source.name}; using the later file"
                )
            row.cells[task.country] = cell
            if task.answers is not None:
                row.answers[task.country] = task.answers
            if str(run.source) not in row.sources:
                row.sources.append(str(run.source))
    for row in rows.values():
        _fill_average(row)
    return list(rows.values())


def _fill_average(row: Row) -> None:
    present = [cc for cc in PAPER_COUNTRIES if cc in row.cells]
    row.n_avg = len(present)
    if not present:
        return
    row.avg = float(np.mean([row.cells[cc].value for cc in present]))
    reps = [row.cells[cc].replicates for cc in present]
    if all(r is not None for r in reps):
        row.avg_low, row.avg_high = _interval(np.mean(np.stack(reps), axis=0))


def rank_rows(rows: list[Row]) -> list[Row]:
    """Rows with more of the 18 countries first, then by the average, best first."""
    return sorted(rows, key=lambda r: (-r.n_avg, -(r.avg if not math.isnan(r.avg) else -1.0)))


def countries_in(rows: list[Row]) -> list[str]:
    """The countries any row covers, in the paper's order (MEX last)."""
    present = {cc for row in rows for cc in row.cells}
    return [cc for cc in ALL_COUNTRIES if cc in present]


# Formatting ------------------------------------------------------------------------------


def _pct(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.{digits}f}"


def _with_ci(value: float, low: float, high: float) -> str:
    if math.isnan(low):
        return _pct(value)
    return f"{_pct(value)} [{_pct(low)}, {_pct(high)}]"


def leaderboard_markdown(rows: list[Row]) -> str:
    """The ranked leaderboard as a Markdown table (x100; 95% bootstrap intervals in brackets)."""
    countries = countries_in(rows)
    head = ["rank", "model", "template", "AVG", "countries", "coverage", *countries]
    lines = [_md_row(head), "|" + "---|" * len(head)]
    for rank, row in enumerate(rows, 1):
        template = TEMPLATES[row.template].label + (" (gen)" if row.generation else "")
        cells = [
            str(rank),
            row.label,
            template,
            _with_ci(row.avg, row.avg_low, row.avg_high),
            f"{row.n_avg}/18",
            _pct(row.coverage, 0) + ("%" if not math.isnan(row.coverage) else ""),
        ]
        for cc in countries:
            cell = row.cells.get(cc)
            cells.append(_with_ci(cell.value, cell.ci_low, cell.ci_high) if cell else "")
        lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"


def leaderboard_records(rows: list[Row], metric: str) -> list[dict]:
    """Plain records (0..1 scale) for JSON."""
    records = []
    for rank, row in enumerate(rows, 1):
        records.append(
            {
                "rank": rank,
                "model": row.label,
                "template": row.template,
                "generation": row.generation,
                "metric": metric,
                "average": _none(row.avg),
                "average_ci": [_none(row.avg_low), _none(row.avg_high)],
                "average_over": [cc for cc in PAPER_COUNTRIES if cc in row.cells],
                "coverage": _none(row.coverage),
                "countries": {
                    cc: {
                        "score": _none(c.value),
                        "ci": [_none(c.ci_low), _none(c.ci_high)],
                        "coverage": _none(c.coverage),
                    }
                    for cc, c in row.cells.items()
                },
                "sources": row.sources,
            }
        )
    return records


def _none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def leaderboard_csv(rows: list[Row]) -> str:
    """One line per row; x100; per country the score, interval and coverage."""
    countries = countries_in(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = [
        "rank",
        "model",
        "template",
        "generation",
        "avg",
        "avg_ci_low",
        "avg_ci_high",
        "n_countries_in_avg",
        "coverage",
    ]
    for cc in countries:
        head += [cc, f"{cc}_ci_low", f"{cc}_ci_high", f"{cc}_coverage"]
    writer.writerow(head)
    for rank, row in enumerate(rows, 1):
        line = [
            rank,
            row.label,
            row.template,
            int(row.generation),
            _csv(row.avg),
            _csv(row.avg_low),
            _csv(row.avg_high),
            row.n_avg,
            _csv(row.coverage),
        ]
        for cc in countries:
            c = row.cells.get(cc)
            line += (
                [_csv(c.value), _csv(c.ci_low), _csv(c.ci_high), _csv(c.coverage)]
                if c
                else [""] * 4
            )
        writer.writerow(line)
    return out.getvalue()


def _csv(value: float) -> str:
    return "" if math.isnan(value) else f"{100 * value:.2f}"


def paper_order(rows: list[Row]) -> list[Row]:
    """Rows grouped by model in first-seen order, templates in the paper's order within a model."""
    models = list(dict.fromkeys(r.label for r in rows))
    order = list(TEMPLATES)
    return sorted(
        rows, key=lambda r: (models.index(r.label), r.generation, order.index(r.template))
    )


def comparison_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """The paper's table: methods by countries and AVG, x100 with 2 decimals, plus coverage."""
    rows = paper_order(rows)
    countries = countries_in(rows)
    head = ["method", *countries, "AVG", "coverage"]
    body = []
    for row in rows:
        line = [row.method]
        line += [_pct(row.cells[cc].value, 2) if cc in row.cells else "" for cc in countries]
        line += [
            _pct(row.avg, 2),
            _pct(row.coverage, 1) + ("%" if not math.isnan(row.coverage) else ""),
        ]
        body.append(line)
    return head, body


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def comparison_markdown(rows: list[Row]) -> str:
    """The paper's table in Markdown (pipes inside names escaped)."""
    head, body = comparison_table(rows)
    lines = [_md_row(head), "|" + "---|" * len(head)]
    lines += [_md_row(line) for line in body]
    return "\n".join(lines) + "\n"


def comparison_csv(rows: list[Row]) -> str:
    head, body = comparison_table(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    writer.writerows([[cell.rstrip("%").replace("–", "") for cell in line] for line in body])
    return out.getvalue()


def comparison_text(rows: list[Row]) -> str:
    """The comparison table aligned for a terminal."""
    head, body = comparison_table(rows)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = lambda line: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
    )
    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body)]) + "\n"
