"""Leaderboard rows from loaded runs: merge runs, bootstrap intervals, rank, format as MD/CSV/JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from culturespa.prompts.task_names import LOGLIKELIHOOD_WAYS, WAYS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.item_counts import (
    items_asked,
    items_text,
    reference_count,
    reference_items,
)
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
from culturespa.text_cells import csv_text, markdown_row, terminal_text

N_RESAMPLES = 1000
LEVEL = 0.95
WAY_SUFFIXES: dict[str, str] = {
    "loglik": "",
    "rev": ", reversed options",
    "gen": ", generated",
    "dist": ", stated distribution",
    "perm": ", permuted orders",
    "cal": ", calibrated",
}
"""What a row's method adds to the template's label for each way of asking (none for the
default, so that 'Culture-aware (P1)' names the log-likelihood row)."""


@dataclass
class Cell:
    """One country's score in one row (0..1 scale): the mean over the row's runs.

    `runs` holds each run's value (one per seed); `replicates` are bootstrap replicates of the
    mean over runs, drawn on the row's shared item draw (see `culturespa.scoring.ItemDraw`).
    """

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    coverage: float = math.nan
    replicates: np.ndarray | None = None
    source: str = ""
    runs: list[float] = field(default_factory=list)
    out_of_range: int = 0
    specific: float = math.nan  # culture-specific alignment (mean over runs), beside any metric
    n_items: int | None = None  # items of the country's survey the cell was asked (fewest of runs)

    @property
    def n_runs(self) -> int:
        return max(1, len(self.runs))

    @property
    def spread(self) -> float:
        """Run-to-run standard deviation (NaN for a single run)."""
        return float(np.std(self.runs, ddof=1)) if len(self.runs) >= 2 else math.nan


@dataclass
class Row:
    """One model/run and template: a score per country, merged over the runs that hold it."""

    label: str
    template: str
    way: str  # the way of asking (culturespa.prompts.task_names.WAYS); "" for reference rows
    cells: dict[str, Cell] = field(default_factory=dict)
    answers: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    avg: float = math.nan
    avg_low: float = math.nan
    avg_high: float = math.nan
    n_avg: int = 0
    run_averages: list[float] = field(default_factory=list)
    rule: str | None = (
        None  # a reference row's answer rule (culturespa.scoring.baselines); None: a model
    )
    reference_items: int | None = None  # the reference rows' items on this row's countries
    model: str = ""  # the base model of a model row (lm-eval's `pretrained`); "" for references
    adapter_kind: str = ""  # base (no adapter), joint or specific; "" for reference rows

    @property
    def n_items(self) -> int | None:
        """Items asked over the row's countries (None where a cell does not know)."""
        counts = [c.n_items for c in self.cells.values()]
        return None if not counts or None in counts else sum(counts)

    @property
    def fewer_items(self) -> bool:
        """Asked fewer items than its survey reference rows are scored on (not comparable)."""
        known = self.n_items is not None and self.reference_items is not None
        return known and self.n_items < self.reference_items

    @property
    def is_reference(self) -> bool:
        """A survey reference row: an answer rule without a model, never ranked among models."""
        return self.rule is not None

    @property
    def generation(self) -> bool:
        """Sampled replies parsed for their first integer (the paper's way)."""
        return self.way == "gen"

    @property
    def template_label(self) -> str:
        if self.is_reference:
            return RULES[self.rule].label
        return TEMPLATES[self.template].label + WAY_SUFFIXES.get(self.way, f", {self.way}")

    @property
    def method(self) -> str:
        """'SmolLM2-135M-Instruct | Culture-aware (P1)' (other ways than log-likelihood marked)."""
        return f"{self.label} | {self.template_label}"

    @property
    def coverage(self) -> float:
        values = [c.coverage for c in self.cells.values() if not math.isnan(c.coverage)]
        return float(np.mean(values)) if values else math.nan

    @property
    def n_runs(self) -> int:
        return max((c.n_runs for c in self.cells.values()), default=1)

    @property
    def specific_avg(self) -> float:
        """The paper's AVG of the culture-specific alignment (NaN where it is unknown)."""
        return paper_average({cc: c.specific for cc, c in self.cells.items()})

    @property
    def avg_spread(self) -> float:
        """Run-to-run standard deviation of the AVG (NaN for a single run)."""
        return float(np.std(self.run_averages, ddof=1)) if len(self.run_averages) >= 2 else math.nan

    @property
    def out_of_range(self) -> int:
        """Answers, over all countries and runs, that are not one of their item's options."""
        return sum(c.out_of_range for c in self.cells.values())


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


def countries_in(rows: list[Row]) -> list[str]:
    """The countries any row covers, in the paper's order (MEX last)."""
    present = {cc for row in rows for cc in row.cells}
    return [cc for cc in WAVE7_COUNTRIES if cc in present]


# Formatting ------------------------------------------------------------------------------


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}" if math.isfinite(value) else "–"


def _with_ci(value: float, low: float, high: float) -> str:
    if not math.isfinite(low):
        return _pct(value)
    return f"{_pct(value)} [{_pct(low)}, {_pct(high)}]"


def runs_text(row: Row) -> str:
    """'1', or '3 (sd 0.42)' for a row averaged over 3 runs (sd of the AVG, x100)."""
    if row.n_runs == 1:
        return "1"
    spread = row.avg_spread
    return f"{row.n_runs}" + ("" if math.isnan(spread) else f" (sd {100 * spread:.2f})")


def coverage_text(row: Row, digits: int = 0) -> str:
    """'98%', with the number of out-of-range answers when there are any."""
    text = _pct(row.coverage, digits) + ("%" if not math.isnan(row.coverage) else "")
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
    lines = [_md_row(head), "|" + "---|" * len(head)]
    for rank, row in zip(ranks(rows), rows):
        template = row.template_label
        cells = [
            str(rank) if rank is not None else ("ref" if row.is_reference else "–"),
            f"*{row.label}*" if row.is_reference else row.label,
            template,
            _with_ci(row.avg, row.avg_low, row.avg_high),
            _pct(row.specific_avg),
            f"{row.n_avg}/18",
            runs_text(row),
            coverage_text(row),
            *([items_text(row.n_items, row.reference_items)] if with_items else []),
        ]
        for cc in countries:
            cell = row.cells.get(cc)
            cells.append(_with_ci(cell.value, cell.ci_low, cell.ci_high) if cell else "")
        lines.append(_md_row(cells))
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
        line += [_pct(row.cells[cc].value, 2) if cc in row.cells else "" for cc in countries]
        line += [
            _pct(row.avg, 2),
            _pct(row.specific_avg, 2),
            _pct(row.coverage, 1) + ("%" if not math.isnan(row.coverage) else ""),
        ]
        if with_range:
            line.append(str(row.out_of_range))
        if with_items:
            line.append(items_text(row.n_items, row.reference_items))
        body.append(line)
    return head, body


def _md_row(cells: list[str]) -> str:
    return markdown_row(cells)


def comparison_markdown(rows: list[Row]) -> str:
    """The paper's table in Markdown (names made inert by `culturespa.text_cells`)."""
    head, body = comparison_table(rows)
    lines = [_md_row(head), "|" + "---|" * len(head)]
    lines += [_md_row(line) for line in body]
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
