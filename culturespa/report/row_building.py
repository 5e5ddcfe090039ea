"""Rows from loaded runs: merge runs of one model and template, bootstrap intervals, and the
survey reference rows on the same countries and items."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from culturespa.prompts.task_names import LOGLIKELIHOOD_WAYS
from culturespa.report.item_counts import items_asked, reference_count, reference_items
from culturespa.report.rows import Cell, Row, countries_in
from culturespa.report.run_scores import Notes, RunScores, TaskResult
from culturespa.report.validity import (
    count_value,
    refuse_unparsable_answers,
    share_value,
    valid_score,
)
from culturespa.scoring.answers import (
    ScoredItem,
    alignment_of,
    answer_in_options,
    collect_scored_items,
)
from culturespa.scoring.baselines import RULES, reference_value
from culturespa.scoring.bootstrap import ItemDraw, mean_of_replicates, percentile_interval
from culturespa.scoring.metric_names import PAPER_SCORE_METRICS
from culturespa.survey.countries import WAVE7_COUNTRIES, in_paper_average, paper_average
from culturespa.survey.items import culture_specific_items, items_with_data

N_RESAMPLES = 1000
"""Bootstrap draws of items behind each row's intervals."""
LEVEL = 0.95
"""The intervals' coverage (95%)."""


def answer_coverage(answers: dict[str, int | None], country: str) -> tuple[float, int]:
    """(share of the asked items with survey data answered with one of their options,
    number answered with a number that is not an option)."""
    surveyed = set(items_with_data(country))
    asked = [qid for qid in answers if qid in surveyed]
    in_options = sum(answer_in_options(qid, answers[qid]) for qid in asked)
    out_of_range = sum(
        answers[qid] is not None and not answer_in_options(qid, answers[qid]) for qid in asked
    )
    return (in_options / len(asked) if asked else math.nan), out_of_range


def _interval(replicates: np.ndarray | None) -> tuple[float, float]:
    return percentile_interval(replicates, LEVEL)


@dataclass
class _RunCell:
    """One run's task for one country, before runs are merged."""

    task: TaskResult
    source: str
    value: float
    limit: object = None  # the run's --limit, from its provenance


def _run_key(run: RunScores) -> object:
    """Runs of one model and template that differ by seed are separate runs; a results file
    without a seed is a run of its own."""
    return run.seed if run.seed is not None else str(run.source)


def scored_rows(task: TaskResult, metric: str, country: str) -> list[ScoredItem]:
    """The items a paper-score metric takes from a sample log's answers: all of them for
    `alignment`, the culture-specific ones for `alignment_specific`."""
    rows = collect_scored_items(task.answers or {}, country)
    if metric == "alignment_specific":
        specific = set(culture_specific_items(country))
        rows = [r for r in rows if r.qid in specific]
    return rows


def _replicates(
    task: TaskResult, metric: str, draw: ItemDraw | None, country: str
) -> np.ndarray | None:
    if draw is None:
        return None
    if task.answers is not None and metric in PAPER_SCORE_METRICS:
        rows = scored_rows(task, metric, country)
        return draw.alignment(rows) if len(rows) >= 2 else None
    if task.item_metrics:
        values = {q: m[metric] for q, m in task.item_metrics.items() if metric in m}
        return draw.mean(values) if len(values) >= 2 else None
    return None


def _draw_for(runs: dict[str, dict[object, _RunCell]], metric: str, seed: int) -> ItemDraw | None:
    """The row's one bootstrap draw, over every item any of its countries and runs scored."""
    items: set[str] = set()
    for country, by_run in runs.items():
        for rc in by_run.values():
            if rc.task.answers is not None and metric in PAPER_SCORE_METRICS:
                items |= {r.qid for r in collect_scored_items(rc.task.answers, country)}
            elif rc.task.item_metrics:
                items |= {q for q, m in rc.task.item_metrics.items() if metric in m}
    return ItemDraw.over(items, N_RESAMPLES, seed)


def culture_specific_value(task: TaskResult, country: str) -> float:
    """The task's culture-specific alignment: its results file's value, else from its answers."""
    value = task.metrics.get("alignment_specific")
    if value is None and task.answers is not None:
        value = alignment_of(scored_rows(task, "alignment_specific", country))
    return value if valid_score(value) else math.nan


def _merge_cell(
    country: str,
    by_run: dict[object, _RunCell],
    metric: str,
    draw: ItemDraw | None,
    notes: Notes,
) -> Cell:
    """The mean over runs of one country, with paired replicates, coverage and out-of-range."""
    cells = list(by_run.values())
    cell = Cell(
        value=float(np.mean([rc.value for rc in cells])),
        source=cells[-1].source,
        runs=[rc.value for rc in cells] if len(cells) > 1 else [],
    )
    coverages, replicates, specific = [], [], []
    cell.n_items = min(items_asked(rc.task, country, rc.limit) for rc in cells)
    for rc in cells:
        task = rc.task
        specific.append(culture_specific_value(task, country))
        coverage = share_value(task.metrics.get("coverage", math.nan))
        if task.answers is not None:
            from_log, out = answer_coverage(task.answers, country)
            cell.out_of_range += out
            coverage = from_log
            if metric in PAPER_SCORE_METRICS:
                recomputed = alignment_of(scored_rows(task, metric, country))
                if not math.isnan(recomputed) and abs(recomputed - rc.value) > 5e-3:
                    notes.add(
                        f"{rc.source}: {task.task}: alignment from the sample log "
                        f"({recomputed:.4f}) differs from the results file ({rc.value:.4f}); "
                        "the table shows the results file's value"
                    )
        else:
            cell.out_of_range += count_value(task.metrics.get("out_of_range", 0))
        if math.isnan(coverage) and task.way in LOGLIKELIHOOD_WAYS:
            coverage = 1.0  # a log-likelihood choice always names an option
        coverages.append(coverage)
        replicates.append(_replicates(task, metric, draw, country))
    cell.coverage = float(np.mean(coverages))
    cell.specific = float(np.mean(specific))
    if all(r is not None for r in replicates):
        cell.replicates = mean_of_replicates(replicates)
    cell.ci_low, cell.ci_high = _interval(cell.replicates)
    logged = cells[0].task.logged_ci if len(cells) == 1 and metric == "alignment" else None
    if cell.replicates is None and logged is not None:
        cell.ci_low, cell.ci_high = logged
    return cell


def build_rows(runs: list[RunScores], metric: str, notes: Notes, seed: int = 0) -> list[Row]:
    """Merge runs into rows keyed by model label, template and way of asking.

    Runs of one row with different seeds are averaged (the paper reports the mean of three
    sampled runs); a second results file for the same seed, country and row replaces the first
    (later file wins, with a note). All countries and runs of a row share one bootstrap draw of
    items, so the AVG interval accounts for their being scored on the same questionnaire.
    """
    keyed: dict[tuple[str, str, str], dict[str, dict[object, _RunCell]]] = {}
    rows: dict[tuple[str, str, str], Row] = {}
    for run in sorted(runs, key=lambda r: (r.date, str(r.source))):
        for task in run.tasks:
            key = (run.label, task.template, task.way)
            row = rows.setdefault(
                key,
                Row(run.label, task.template, task.way, model=run.base_model,
                    adapter_kind=run.adapter_kind),
            )  # fmt: skip
            refuse_unparsable_answers(task, run.source, notes)
            value = task.metrics.get(metric)
            if value is None and task.answers is not None and metric in PAPER_SCORE_METRICS:
                value = alignment_of(scored_rows(task, metric, task.country))  # older runs
            if value is None:
                notes.add(f"{run.source}: task {task.task} has no {metric!r} metric; left out")
                continue
            if not math.isnan(value) and not valid_score(value):  # NaN: no score, shown as such
                notes.add(
                    f"{run.source}: task {task.task}: {metric} is {value!r}, not a score "
                    "(a finite number up to 1); left out, never ranked"
                )
                continue
            by_run = keyed.setdefault(key, {}).setdefault(task.country, {})
            run_key = _run_key(run)
            if run_key in by_run:
                earlier = Path(by_run[run_key].source)
                notes.add(
                    f"{task.task} of {run.label} is in {earlier.parent.name}/{earlier.name} and "
                    f"{run.source.parent.name}/{run.source.name} with the same seed; using the "
                    "later file"
                )
            by_run[run_key] = _RunCell(task, str(run.source), value, run.provenance.get("limit"))
            if str(run.source) not in row.sources:
                row.sources.append(str(run.source))
    for key, row in rows.items():
        by_country = keyed.get(key, {})
        draw = _draw_for(by_country, metric, seed)
        for country in WAVE7_COUNTRIES:
            if country not in by_country:
                continue
            by_run = by_country[country]
            row.cells[country] = _merge_cell(country, by_run, metric, draw, notes)
            first = next(iter(by_run.values())).task
            if first.answers is not None:
                row.answers[country] = first.answers
        _fill_average(row, by_country)
    return [row for row in rows.values() if row.cells]


def _fill_average(row: Row, by_country: dict[str, dict[object, _RunCell]]) -> None:
    present = in_paper_average(row.cells)
    row.n_avg = len(present)
    if not present:
        return
    row.avg = paper_average({cc: cell.value for cc, cell in row.cells.items()})
    reps = [row.cells[cc].replicates for cc in present]
    if all(r is not None for r in reps):
        row.avg_low, row.avg_high = _interval(mean_of_replicates(reps))
    if not by_country:
        return
    run_keys = [set(by_country[cc]) for cc in present]
    shared = set.intersection(*run_keys) if run_keys else set()
    if len(shared) >= 2 and all(len(keys) == len(shared) for keys in run_keys):
        row.run_averages = [
            paper_average({cc: by_country[cc][k].value for cc in present}) for k in shared
        ]


REFERENCE_LABEL = "survey reference"
"""The `model` of reference rows: answer rules computed from the survey alone."""


def reference_rows(models: list[Row], metric: str) -> list[Row]:
    """One row per survey answer rule (`culturespa.scoring.baselines`), on the countries the model rows
    cover and, where they logged their items, on the same items (the same skipping rules).

    Their values are exact expectations from the survey, not estimates: they carry no interval.
    """
    countries = countries_in(models)
    logged = reference_items(models)
    references = []
    for rule in RULES:
        row = Row(REFERENCE_LABEL, "", "", rule=rule)
        for cc in countries:
            value, coverage = reference_value(rule, cc, metric, logged.get(cc))
            specific, _ = reference_value(rule, cc, "alignment_specific", logged.get(cc))
            row.cells[cc] = Cell(
                value=value,
                coverage=coverage,
                source="culturespa.scoring.baselines",
                specific=specific,
                n_items=reference_count(logged.get(cc), cc),
            )
        _fill_average(row, {})
        references.append(row)
    return references
