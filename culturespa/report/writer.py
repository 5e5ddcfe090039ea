"""Write a whole report folder: leaderboard (MD/CSV/JSON), the paper's comparison table, plots."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.output_folder import OutputFolder, claim_folder, write_errors
from culturespa.prompts.templates import TEMPLATES
from culturespa.report import analysis, plots, position
from culturespa.report.comparison import comparison_csv, comparison_markdown
from culturespa.report.html import render_page
from culturespa.report.item_counts import mark_fewer_items
from culturespa.report.leaderboard import (
    leaderboard_csv,
    leaderboard_markdown,
    leaderboard_records,
    rank_rows,
)
from culturespa.report.replies_input import DEFAULT_REPLIES_LABEL, load_inputs
from culturespa.report.row_building import build_rows, reference_rows
from culturespa.report.rows import Row
from culturespa.report.run_scores import Notes, RunScores
from culturespa.report.survey_of_run import survey_of_report
from culturespa.text_cells import json_text, markdown_cell

RowSelector = str | Callable[[Row], bool]
"""A row to compare: its method's text (`--compare`), or a test of its identity."""

REPORT_ENTRIES: tuple[str, ...] = (
    "comparison.md",
    "comparison.csv",
    "leaderboard.json",
    "leaderboard.csv",
    "leaderboard.md",
    "change.md",
    "steerability.md",
    "steerability.csv",
    "order_consistency.md",
    "order_consistency.csv",
    "agreement.md",
    "agreement.csv",
    "position_led.md",
    "index.html",
    "plots",
)
"""What a report writes into its folder (`plots` a folder of PNGs). A new report replaces the
files the folder's manifest says culturespa wrote; other files stay (`culturespa.output_folder`)."""


@dataclass
class Report:
    """What a report run produced: ranked rows, files written, relation correlations, notes."""

    rows: list[Row]
    notes: Notes
    files: list[Path] = field(default_factory=list)
    correlations: dict[str, float] = field(default_factory=dict)
    steerability: list[analysis.Steerability] = field(default_factory=list)
    change: analysis.Steerability | None = None
    """With --compare: how the second row moves the first one's answers (paired)."""
    order_consistency: list[analysis.OrderConsistencyAnalysis] = field(default_factory=list)
    agreement: list[analysis.WayAgreement] = field(default_factory=list)
    position_led: list[position.PositionLed] = field(default_factory=list)

    @property
    def models(self) -> list[Row]:
        """The rows of models (survey reference rows left out)."""
        return [r for r in self.rows if not r.is_reference]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80]


def select_row(rows: list[Row], selector: str | Callable[[Row], bool]) -> Row:
    """The row whose method is `selector`, else the one whose method ends with it, else the one
    that contains it (case-insensitive); must be exactly one. 'Culture-aware (P1)' selects the
    log-likelihood row next to 'Culture-aware (P1), reversed options'. A callable selects the
    one row it accepts (a row's identity: `Row.model`, `adapter_kind`, `template`, `way`)."""
    if callable(selector):
        found = [r for r in rows if selector(r)]
        if len(found) != 1:
            known = "; ".join(r.method for r in rows)
            raise CulturespaError(f"{len(found)} rows of the kind to compare; rows are: {known}")
        return found[0]
    wanted = selector.lower()
    hits = [r for r in rows if wanted in r.method.lower()]
    exact = [r for r in hits if r.method.lower() == wanted]
    ending = [r for r in hits if r.method.lower().endswith(wanted)]
    for found in (exact, ending, hits):
        if len(found) == 1:
            return found[0]
    known = "; ".join(r.method for r in rows)
    reason = "matches no row" if not hits else f"matches {len(hits)} rows"
    raise CulturespaError(f"--compare {selector!r} {reason}; rows are: {known}")


def _steerability_document(analyses: list[analysis.Steerability]) -> str:
    return (
        "# Steerability: how the culture-aware persona moves a model's answers\n\n"
        "Per country, on the items both runs answered: the share of items where the persona moves "
        "the answer closer to the survey majority, away from it, or leaves its distance, and the "
        "change in the paper's alignment score (culture-aware minus culture-unaware, x100) with a "
        "95% paired bootstrap interval (one draw of items for both runs and all countries).\n\n"
        + analysis.steerability_markdown(analyses)
    )


def _change_document(change: analysis.Steerability, before: Row, after: Row) -> str:
    return (
        f"# Change from {markdown_cell(before.method)} to {markdown_cell(after.method)}\n\n"
        "Per country, on the items both rows answered: the share of items where the second row's "
        "answer is closer to the survey majority than the first row's, farther from it, or as "
        "far, and the change in the paper's alignment score (second minus first, x100) with a "
        "95% paired bootstrap interval (one draw of items for both rows and all countries). An "
        "interval that holds 0 is a change the items cannot tell from none.\n\n"
        + analysis.steerability_markdown([change])
    )


def _order_document(analyses: list[analysis.OrderConsistencyAnalysis]) -> str:
    return (
        "# Order consistency: the options listed forward and reversed\n\n"
        "The log-likelihood tasks asked twice: with the options in the survey's order "
        "(`wvs_<template>_<cc>`) and listed last to first, numbered 1..k "
        "(`wvs_rev_<template>_<cc>`), each answer mapped back to the survey's code. Per country, "
        "on the items both runs answered: the share of items where both orders give the same "
        "option, the paper's alignment score in each order (x100) and forward minus reversed "
        "with a 95% paired bootstrap interval (one draw of items for both orders and all "
        "countries). A model that reads the question answers the same way in both orders; one "
        "that favours a position or a number does not.\n\n"
        + analysis.order_consistency_markdown(analyses)
    )


def _agreement_document(agreements: list[analysis.WayAgreement]) -> str:
    return (
        "# Agreement between ways of asking\n\n"
        "For each model and template asked in several ways: the share of (country, item) pairs, "
        "over the countries both ways cover and the items both answered, where the two ways "
        "name the same option (log-likelihood: the most likely option; reversed options: mapped "
        "back to the survey's code; generation: the parsed reply; stated distribution: the "
        "option with the largest stated share).\n\n" + analysis.agreement_markdown(agreements)
    )


def _position_document(rows: list[position.PositionLed]) -> str:
    return (
        "# Position-led share\n\nThe share of items (x100) whose forward log-likelihood answer is "
        'the option listed where the model\'s answer to a content-free question ("N/A", the same '
        "option numbers) puts its largest probability: answers the question did not decide. "
        "From the calibrated tasks (`wvs_cal_*`). A large share, with a large gap between the "
        "forward row and the permuted and calibrated rows, says the forward score measures "
        "where the options are listed, not the culture.\n\n" + position.position_led_markdown(rows)
    )


def _markdown_document(rows: list[Row], metric: str, notes: Notes) -> str:
    parts = [
        "# WVS cultural alignment leaderboard\n",
        f"Metric: `{metric}` x100 (the paper's alignment score when `alignment`). AVG is the mean "
        "over the paper's 18 countries present in the row (the `countries` column says how "
        "many); rows with all 18 rank first. Brackets: 95% bootstrap intervals over items, from "
        "the sample logs (none without `--log_samples`), paired across the row's countries.\n",
        "Rows ranked `ref` (model *survey reference*) are answer rules computed from the survey "
        "alone, on the same items: what a score means next to a uniform random answer, the "
        "middle option, the 18 countries' consensus, a respondent of the country, the most "
        "similar other country's majority and the country's own majority (the ceiling). They "
        "are exact expectations (no interval) and never ranked among models. A model row ranked "
        "`–` has no AVG (no valid score in the paper's countries) and is not ranked either; an "
        "`items` column ('9 of 750') marks rows asked fewer items than the reference rows.\n",
        leaderboard_markdown(rows),
    ]
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {markdown_cell(m)}" for m in notes.messages))
        parts[-1] += "\n"
    return "\n".join(parts)


@dataclass(frozen=True)
class ReportOptions:
    """How `build_report` reads, ranks and writes (the defaults are `culturespa report`'s).

    `countries`: what culture-unaware reply files are scored against (see `load_inputs`).
    `references`: add the survey reference rows (`culturespa.scoring.baselines`), unranked.
    `overwrite`: write into a folder of other files (only culturespa's own names are replaced).
    `ways`: keep only the tasks of these ways of asking (`culturespa.prompts.task_names.WAYS`).
    """

    metric: str = "alignment"
    compare: tuple[RowSelector, RowSelector] | None = None
    seed: int = 0
    plot: bool = True
    countries: tuple[str, ...] | None = None
    replies_label: str = DEFAULT_REPLIES_LABEL
    references: bool = True
    overwrite: bool = False
    ways: tuple[str, ...] | None = None


def build_report(
    paths: list[str | Path], out_dir: str | Path, options: ReportOptions = ReportOptions()
) -> Report:
    """Read every results file (and reply file) under `paths`, write the report into `out_dir`."""
    # The survey the results name is read (and checked) before the folder is claimed.
    with (
        survey_of_report(paths),
        claim_folder(out_dir, "report folder", options.overwrite, kind="report") as folder,
    ):
        return _build_report(folder, paths, options)


def _load_runs(paths: list[str | Path], options: ReportOptions) -> tuple[list[RunScores], Notes]:
    """The runs under `paths` (only the tasks of `options.ways`); none is a one-line error."""
    runs, notes = load_inputs(
        paths, countries=options.countries, replies_label=options.replies_label
    )
    if options.ways is not None:
        for run in runs:
            run.tasks = [t for t in run.tasks if t.way in options.ways]
        runs = [run for run in runs if run.tasks]
    if not runs:
        detail = "; ".join(notes.messages) or "nothing given"
        raise CulturespaError(f"no usable culturespa results found ({detail})")
    return runs, notes


def _build_report(folder: OutputFolder, paths: list[str | Path], options: ReportOptions) -> Report:
    """`build_report` in its claimed folder."""
    metric, seed, compare = options.metric, options.seed, options.compare
    runs, notes = _load_runs(paths, options)
    models = build_rows(runs, metric, notes, seed=seed)
    if not models:
        raise CulturespaError(f"no result carries the metric {metric!r}")
    survey_rows = reference_rows(models, metric) if options.references else []
    mark_fewer_items(models, notes)
    rows = rank_rows(models + survey_rows)
    pair = (select_row(rows, compare[0]), select_row(rows, compare[1])) if compare else None
    report = Report(rows=rows, notes=notes)
    report.steerability = analysis.steerability(models, seed=seed)
    if pair and not any(r.is_reference for r in pair):
        report.change = analysis.paired_change(*pair, seed=seed)
    report.order_consistency = analysis.order_consistency(models, seed=seed)
    report.agreement = analysis.way_agreement(models)
    report.position_led = position.position_led(runs)
    relations = analysis.relation_records(models)
    report.correlations = {method: record["r"] for method, record in relations.items()}
    _note_missing_relations(models, relations, notes)
    payload = _leaderboard_payload(report, runs, metric, relations)
    _write_files(folder, report, payload, options, pair)
    return report


def _note_missing_relations(models: list[Row], relations: dict, notes: Notes) -> None:
    """A note for each row that could show relations between cultures but logged no answers."""
    for row in models:
        wanted = len(row.cells) >= analysis.MIN_RELATION_COUNTRIES
        if wanted and TEMPLATES[row.template].country_dependent and row.method not in relations:
            notes.add(
                f"{row.method}: no relations between cultures (per-item answers for "
                f"{len(row.answers)} of its {len(row.cells)} countries; run lm-eval with "
                "--log_samples)"
            )


def _leaderboard_payload(
    report: Report, runs: list[RunScores], metric: str, relations: dict
) -> dict:
    """What `leaderboard.json` holds (and the page is drawn from)."""
    return {
        "metric": metric,
        "rows": leaderboard_records(report.rows, metric),
        "correlations": report.correlations,
        "steerability": [s.as_dict() for s in report.steerability],
        "change": report.change.as_dict() if report.change else None,
        "order_consistency": [a.as_dict() for a in report.order_consistency],
        "agreement": [a.as_dict() for a in report.agreement],
        "position_led": [p.as_dict() for p in report.position_led],
        "notes": report.notes.messages,
        "runs": {str(run.source): run.provenance for run in runs},
        "relations": relations,
    }


def _write_files(
    folder: OutputFolder,
    report: Report,
    payload: dict,
    options: ReportOptions,
    pair: tuple[Row, Row] | None,
) -> None:
    """Every file of the report, built in a staging folder and moved in as one set: a failure
    (e.g. a full disk) leaves the folder as it was, and no file of an older report stays."""
    out, rows, metric = folder.path, report.rows, options.metric
    with folder.staging() as stage, write_errors(out):

        def write(name: str, text: str) -> None:
            path = stage / name
            path.write_text(text, encoding="utf-8")
            report.files.append(path)

        write("comparison.md", comparison_markdown(rows))
        write("comparison.csv", comparison_csv(rows))
        if options.plot:
            (stage / "plots").mkdir()
            _write_plots(report, stage / "plots", metric, pair, set(payload["relations"]))
        if report.change:
            write("change.md", _change_document(report.change, *pair))
        if report.steerability:
            write("steerability.md", _steerability_document(report.steerability))
            write("steerability.csv", analysis.steerability_csv(report.steerability))
        if report.order_consistency:
            write("order_consistency.md", _order_document(report.order_consistency))
            write("order_consistency.csv", analysis.order_consistency_csv(report.order_consistency))
        if report.agreement:
            write("agreement.md", _agreement_document(report.agreement))
            write("agreement.csv", analysis.agreement_csv(report.agreement))
        if report.position_led:
            write("position_led.md", _position_document(report.position_led))
        write("leaderboard.json", json_text(payload))
        write("leaderboard.csv", leaderboard_csv(rows))
        write("leaderboard.md", _markdown_document(rows, metric, report.notes))
        write("index.html", render_page(payload, out))
        folder.commit(stage, replace=True, last=("index.html",))
        report.files = [out / p.relative_to(stage) for p in report.files]


def _write_plots(
    report: Report,
    folder: Path,
    metric: str,
    pair: tuple[Row, Row] | None,
    with_relations: set[str],
) -> None:
    rows, notes = report.rows, report.notes
    report.files.append(plots.plot_heatmap(rows, folder / "heatmap.png", metric))
    models = report.models
    references = [r for r in rows if r.is_reference]
    if pair is None and len(models) >= 2:
        pair = (models[1], models[0])
    elif pair is None:
        notes.add("only one model row: no side-by-side bar plot")
    if pair:
        report.files.append(
            plots.plot_paired_bars(*pair, folder / "bars.png", metric, references=references)
        )
    for steer in report.steerability:
        name = f"steerability_{_slug(steer.name)}.png"
        report.files.append(plots.plot_steerability(steer, folder / name))
    for order in report.order_consistency:
        name = f"order_consistency_{_slug(order.name)}.png"
        report.files.append(plots.plot_order_consistency(order, folder / name))
    for row in models:
        if row.method in with_relations:
            path, _ = plots.plot_relations(row, folder / f"relations_{_slug(row.method)}.png")
            report.files.append(path)
