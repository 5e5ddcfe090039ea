"""The loop's report: `culturespa report` on its results (base vs joint bars, paired change),
the training loss curves, and `summary.md` in the paper's table shape with intervals, the paired
changes, the training pairs and each stage's cost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from culturespa.loop.commands import Timings, Usage, minutes
from culturespa.loop.config import LoopConfig
from culturespa.loop.layout import STAGES, Layout
from culturespa.loop.summary_cells import (
    ROW_NAMES,
    ci_text,
    first_group,
    position_cells,
    row_of,
    x100_text,
)
from culturespa.loop.ways_summary import rows_by_way, way_changes, way_lines
from culturespa.run_files import FILTERED_QUESTIONS, JOINT, QUESTIONS_FOLDER, SFT_FOLDER, set_jsonl

if TYPE_CHECKING:
    from culturespa.report.rows import Row


def compare_pair(config: LoopConfig) -> tuple[Callable[[Row], bool], ...] | None:
    """The report's paired comparison: base model vs culture-joint adapter when both are
    evaluated, else culture-unaware vs culture-aware prompting of the base model (the demo)."""
    template, way = first_group(config)
    if {"base", "joint"} <= set(config.models):
        return row_of("base", template, way), row_of("joint", template, way)
    from culturespa.prompts.task_names import parse_task_name

    templates = {parse_task_name(g).template for g in config.eval_groups}
    if "base" in config.models and {"culture_unaware", "culture_aware"} <= templates:
        return row_of("base", "culture_unaware", way), row_of("base", "culture_aware", way)
    return None


def build_loop_report(config: LoopConfig, layout: Layout, overwrite: bool = False):
    """`culturespa report` on the run's evaluations into its report folder (see `compare_pair`).
    A report folder inside the run folder is the loop's own: an older version's is replaced;
    the run folder itself (the demo) is replaced only with `overwrite`."""
    from culturespa.report.writer import ReportOptions, build_report

    if layout.base_eval.is_relative_to(layout.eval):
        paths = [layout.eval]
    else:
        paths = [layout.base_eval] + ([layout.eval] if layout.eval.is_dir() else [])
    own_folder = layout.report.resolve() != layout.out.resolve()
    options = ReportOptions(
        compare=compare_pair(config), seed=config.seed, overwrite=overwrite or own_folder
    )
    return build_report(paths, layout.report, options)


def summary_rows(config: LoopConfig, report) -> dict[str, Row]:
    """The report's rows of the base model, the joint adapter and the specific adapters (those
    evaluated), found by their identity on the config's first task group."""
    _, way = first_group(config)
    return rows_by_way(config, report).get(way, {})


def write_report(config: LoopConfig, layout: Layout, report, timings: Timings) -> str:
    """The view of the loop's report (`build_loop_report`: base vs joint bars and paired
    change): the training loss plot, summary.md and summary.json; returns the summary."""
    from culturespa.atomic import write_json_atomic, write_text_atomic
    from culturespa.report.loss_history import read_loss_history
    from culturespa.report.plots import plot_training_loss

    _, first_way = first_group(config)
    ways = rows_by_way(config, report)
    rows = ways.get(first_way, {})
    references = [r for r in report.rows if r.is_reference]

    curves = {}
    if Layout.adapter_done(layout.joint):
        curves["culture-joint"] = read_loss_history(layout.joint)
    for cc in config.countries:
        if Layout.adapter_done(layout.specific / cc):
            curves[f"specific {cc}"] = read_loss_history(layout.specific / cc)
    if curves:
        (layout.report / "plots").mkdir(exist_ok=True)
        plot_training_loss(
            curves,
            layout.report / "plots" / "training_loss.png",
            f"LoRA training loss, {ROW_NAMES['joint']} and {ROW_NAMES['specific']}",
        )

    by_way = way_changes(ways, config.seed)  # paired against the base model asked the same way
    changes = by_way.get(first_way, {})
    text = summary_markdown(config, layout, rows, references, changes, curves, timings)
    if len(ways) > 1:
        text += "\n".join(way_lines(list(config.countries), ways, by_way)) + "\n"
    write_text_atomic(layout.summary, text)
    write_json_atomic(  # NaN (no interval) is written as null
        layout.out / "summary.json",
        {
            "rows": {
                k: {
                    "avg": r.avg, "avg_ci": [r.avg_low, r.avg_high],
                    "countries": {cc: [c.value, c.ci_low, c.ci_high] for cc, c in r.cells.items()},
                }
                for k, r in rows.items()
            },
            "changes": {k: ch.as_dict() for k, ch in changes.items() if ch},
            "ways": {
                way: {
                    kind: {
                        "avg": r.avg, "avg_ci": [r.avg_low, r.avg_high],
                        "specific": r.specific_avg,
                        "change": ch.as_dict() if (ch := by_way[way].get(kind)) else None,
                    }
                    for kind, r in rows_of_way.items()
                }
                for way, rows_of_way in ways.items()
            } if len(ways) > 1 else {},
            "training_rows": training_rows(config, layout),
            "timings": timings.records,
        },
    )  # fmt: skip
    return text


def training_rows(config: LoopConfig, layout: Layout) -> dict[str, int]:
    rows = {cc: layout.training_rows(cc) for cc in config.countries}
    return {**rows, "joint": layout.training_rows()}


def training_positions(data: Path) -> dict[int, int]:
    """How often each listed position is the answer of the culture-joint training set in the
    data builder's folder `data`: 1 for the question's first listed option (its `first_option`
    code), 2 for the second, ...; empty while the set does not exist."""
    from culturespa.pluralise.store import read_jsonl

    sft = set_jsonl(data / SFT_FOLDER / JOINT)
    if not sft.is_file():
        return {}
    first = {
        q["question_id"]: q["first_option"]
        for q in read_jsonl(data / QUESTIONS_FOLDER / FILTERED_QUESTIONS)
    }
    counts: dict[int, int] = {}
    for row in read_jsonl(sft):
        position = int(row["messages"][-1]["content"]) - first[row["question_id"]] + 1
        counts[position] = counts.get(position, 0) + 1
    return counts


def _train_facts(folder: Path) -> tuple[int, float, float] | None:
    """(optimizer steps, first logged loss, last logged loss) of an adapter."""
    from culturespa.report.loss_history import read_loss_history

    if not Layout.adapter_done(folder):
        return None
    points = read_loss_history(folder)
    if not points:
        return None
    return max(p.step for p in points), points[0].loss, points[-1].loss


def summary_markdown(config, layout, rows, references, changes, curves, timings) -> str:
    """summary.md: the paper's table with intervals, the paired changes, the training pairs,
    the answers' listed positions and each stage's cost."""
    countries = list(config.countries)
    lines = _header_lines(config, layout, rows)
    lines += _alignment_lines(countries, rows, references)
    lines += _change_lines(countries, changes)
    lines += _training_lines(config, layout)
    lines += _position_lines(layout, rows)
    lines += _timing_lines(timings)
    lines += [
        "",
        f"Files: `{layout.report}/comparison.md`, `leaderboard.md`, `index.html`, `change.md`, "
        "`plots/bars.png` (base vs joint), `plots/training_loss.png`.",
    ]
    return "\n".join(lines) + "\n"


def _header_lines(c: LoopConfig, layout: Layout, rows: dict) -> list[str]:
    from culturespa.text_cells import markdown_cell

    model = rows["base"].label if "base" in rows else c.model
    task = c.eval_task if isinstance(c.eval_task, str) else ", ".join(c.eval_task)
    return [
        f"# CultureSPA loop: {markdown_cell(model)}, {', '.join(c.countries)}\n",
        f"Settings: `{layout.manifest}`; data subset: "
        + (f"{c.per_topic} kept questions per topic" if c.per_topic else "every kept question")
        + f"; seed {c.seed}; evaluation `{task}` "
        + (
            f"(first {c.eval_limit} items per country)"
            if c.eval_limit
            else "(every item with survey data)"
        )
        + f", {c.eval_backend}.\n",
    ]


def _alignment_lines(countries: list[str], rows: dict, references: list) -> list[str]:
    from culturespa.text_cells import markdown_row

    head = ["", *countries, "AVG"]
    lines = [
        "## Alignment (the paper's score x100, 95% bootstrap interval over items)\n",
        markdown_row(head),
        "|---" * len(head) + "|",
    ]
    for key, row in rows.items():
        cells = [
            ci_text(row.cells[cc].value, row.cells[cc].ci_low, row.cells[cc].ci_high)
            if cc in row.cells
            else ""
            for cc in countries
        ]
        lines.append(
            markdown_row([ROW_NAMES[key], *cells, ci_text(row.avg, row.avg_low, row.avg_high)])
        )
    for row in references:
        cells = [x100_text(row.cells[cc].value) if cc in row.cells else "" for cc in countries]
        name = f"*{row.template_label}* (survey reference)"
        lines.append(markdown_row([name, *cells, x100_text(row.avg)]))
    return [
        *lines,
        "",
        "AVG: mean over the five countries, its interval from one draw of items for all of them.",
        "",
    ]


def _change_lines(countries: list[str], changes: dict) -> list[str]:
    from culturespa.text_cells import markdown_row

    lines = [
        "## Change against the base model (paired: same items, one draw for both rows)\n",
        "| | " + " | ".join(countries) + " | AVG | items closer / farther |",
        "|---" * (len(countries) + 3) + "|",
    ]
    for key, change in changes.items():
        if change is None:
            continue
        by_cc = {s.country: s for s in change.countries}
        cells = [
            ci_text(by_cc[cc].delta, by_cc[cc].delta_low, by_cc[cc].delta_high)
            if cc in by_cc
            else ""
            for cc in countries
        ]
        avg = ci_text(*change.average) if change.average else ""
        moved = [s for s in change.countries if s.n_items]
        closer = sum(s.closer * s.n_items for s in moved) / max(1, sum(s.n_items for s in moved))
        away = sum(s.away * s.n_items for s in moved) / max(1, sum(s.n_items for s in moved))
        moved_text = f"{100 * closer:.1f}% / {100 * away:.1f}%"
        lines.append(markdown_row([f"{ROW_NAMES[key]} - base", *cells, avg, moved_text]))
    verdicts = []
    for key, change in changes.items():
        if change is None or change.average is None:
            continue
        mean, low, high = change.average
        inside = low <= 0 <= high
        verdicts.append(
            f"- {ROW_NAMES[key]}: AVG change {ci_text(mean, low, high)}: "
            + ("the interval holds 0, so the change is **inside the intervals** (not distinguishable from no change on these items)." if inside
               else "the interval excludes 0, so the change is **outside the intervals**.")
        )  # fmt: skip
    return [*lines, "", *verdicts, ""]


def _training_lines(c: LoopConfig, layout: Layout) -> list[str]:
    countries = list(c.countries)
    rows_per = training_rows(c, layout)
    lines = [
        "## Training pairs (culture-aware answer differs from the culture-unaware one)\n",
        "| set | " + " | ".join(countries) + " | joint |",
        "|---" * (len(countries) + 2) + "|",
        "| rows | "
        + " | ".join(str(rows_per[cc]) for cc in countries)
        + f" | {rows_per['joint']} |",
        "",
    ]
    facts = [("joint", _train_facts(layout.joint))] + [
        (cc, _train_facts(layout.specific / cc)) for cc in countries
    ]
    lines += ["| adapter | steps | loss first -> last logged step |", "|---|---|---|"]
    for name, fact in facts:
        if fact:
            lines.append(f"| {name} | {fact[0]} | {fact[1]:.3f} -> {fact[2]:.3f} |")
    return lines


def _position_lines(layout: Layout, rows: dict) -> list[str]:
    from culturespa.report.analysis import listed_positions

    lines = [
        "",
        "## Which listed option the answers are (position in the prompt's list)\n",
        "| answers | 1st | 2nd | 3rd | 4th | 5th or later | no option |",
        "|---|---|---|---|---|---|---|",
        "| training pairs (joint set, culture-aware answers) | "
        + " | ".join(position_cells(training_positions(layout.data)))
        + " |",
    ]
    for key, row in rows.items():
        if row.answers:
            cells = position_cells(listed_positions(row.answers))
            lines.append(f"| {ROW_NAMES[key]} (WVS items) | " + " | ".join(cells) + " |")
    return lines


def _timing_lines(timings: Timings) -> list[str]:
    lines = ["", "## Wall time, CPU time and peak memory per stage\n"]
    lines += [
        "| stage | wall | CPU | peak RSS | load average at the end |",
        "|---|---|---|---|---|",
    ]
    total = Usage()
    for stage in STAGES:
        units = [u for u in timings.records if u.split("/")[0] == stage]
        stage_usage = Usage()
        for unit in units:
            rec = timings.records[unit]
            usage = Usage(rec["seconds"], rec["cpu_seconds"], rec["peak_rss_mb"])
            stage_usage.add(usage)
            if len(units) > 1:
                lines.append(
                    f"| {unit} | {minutes(usage.seconds)} | {minutes(usage.cpu_seconds)} | "
                    f"{usage.peak_rss_mb:.0f} MB | {rec.get('load_average', '')} |"
                )
        if units:
            total.add(stage_usage)
            lines.append(
                f"| **{stage}** | **{minutes(stage_usage.seconds)}** | "
                f"{minutes(stage_usage.cpu_seconds)} | {stage_usage.peak_rss_mb:.0f} MB | |"
            )
    lines.append(
        f"| **total** | **{minutes(total.seconds)}** | {minutes(total.cpu_seconds)} | "
        f"{total.peak_rss_mb:.0f} MB | |"
    )
    return lines
