"""Reply files in the paper's release format as report inputs, next to lm-eval results.

The CultureSPA release names its files `wvs_result_<template>[_<country>]_<run>.json`, e.g.
`wvs_result_culture_unaware_0.json` (one reply per item, scored against every country) and
`wvs_result_culture_aware_USA_0.json`. Each file becomes one `RunScores`, with one task per
country it is scored against, so that its rows go through the same tables and plots as
lm-eval runs. The replies are parsed with the paper's parser and scored with the paper's score.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from culturespa.errors import CulturespaError
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.results_files import load_runs
from culturespa.report.run_scores import Notes, RunScores, TaskResult
from culturespa.run_files import RESULTS_GLOB
from culturespa.scoring.country_scores import score_country
from culturespa.scoring.distributions import distribution_scores
from culturespa.scoring.replies import parse_replies, read_reply_file
from culturespa.survey.countries import COUNTRIES, PAPER_COUNTRIES, WAVE7_COUNTRIES
from culturespa.survey.items import get_item, has_survey_data

REPLY_FILE = re.compile(r"^wvs_result_(?P<body>[A-Za-z_]+?)_(?P<run>\d+)\.json$")
REPLY_GLOB = "wvs_result_*.json"

PAPER_TEMPLATE_NAMES: dict[str, str] = {
    "culture_unaware": "culture_unaware",
    "culture_aware": "culture_aware",
    "cross_culture_thinking": "cross_culture_thinking",
    "self_alignment": "self_alignment",
    "culture_aware_self_alignment": "aware_self_alignment",
    "cross_culture_thinking_self_alignment": "cct_self_alignment",
}
"""The template part of the paper's file names -> culturespa's template names."""

DEFAULT_REPLIES_LABEL = "paper release (Llama-3-8B-Instruct)"
"""How rows from reply files are labelled unless `--replies-label` says otherwise."""

_DEMONYMS = {c.demonym.replace(" ", "").lower(): code for code, c in COUNTRIES.items()}


def _country_in_name(part: str) -> str | None:
    """'USA' or 'usa' (ISO-3) or 'American' (demonym, as some release files use) -> 'USA'."""
    if part.upper() in WAVE7_COUNTRIES:
        return part.upper()
    return _DEMONYMS.get(part.lower())


def parse_reply_file_name(name: str) -> tuple[str, str | None, int] | None:
    """'wvs_result_culture_aware_USA_0.json' -> ('culture_aware', 'USA', 0); None if not one."""
    match = REPLY_FILE.match(name)
    if not match:
        return None
    body, run = match["body"], int(match["run"])
    head, _, tail = body.rpartition("_")
    country = _country_in_name(tail) if head else None
    template = PAPER_TEMPLATE_NAMES.get(head if country else body)
    if template is None:
        return None
    if country is None and TEMPLATES[template].country_dependent:
        return None  # a persona template names its country
    return template, country, run


def split_inputs(paths: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """(paths for the lm-eval loader, reply files): folders holding only reply files go to the
    second list alone, so that the results loader does not call them empty."""
    results: list[Path] = []
    replies: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob(REPLY_GLOB) if p.is_file())
            replies.extend(found)
            if not found or any(path.rglob(RESULTS_GLOB)):
                results.append(path)
        elif path.is_file() and path.name.startswith("wvs_result_"):
            replies.append(path)
        else:
            results.append(path)
    return results, list(dict.fromkeys(p.resolve() for p in replies))


def reply_task(answers: dict[str, int | None], template: str, country: str, name: str):
    """One country's scores of parsed replies, as a generation task of that template."""
    asked = {qid: a for qid, a in answers.items() if has_survey_data(country, qid)}
    score = score_country(asked, country, n_resamples=0)
    item_metrics: dict[str, dict[str, float]] = {}
    for qid, answer in asked.items():
        options = get_item(qid).option_numbers
        metrics = {
            "coverage": float(answer in options),
            "out_of_range": float(answer is not None and answer not in options),
        }
        if answer in options:  # as the generation tasks do: W1 and JSD of a one-option reply
            point = np.zeros(len(options))
            point[list(options).index(answer)] = 1.0
            scores = distribution_scores(point, country, qid)
            metrics.update(alignment_w1=scores.alignment_w1, alignment_jsd=scores.alignment_jsd)
        item_metrics[qid] = metrics
    metrics = {
        "alignment": score.alignment,
        "coverage": score.coverage,
        "out_of_range": float(score.n_out_of_range),
    }
    for metric in ("alignment_w1", "alignment_jsd"):
        values = [m[metric] for m in item_metrics.values() if metric in m]
        if values:
            metrics[metric] = float(np.mean(values))
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    return TaskResult(
        task=name,
        template=template,
        way="gen",
        country=country,
        metrics=metrics,
        answers=asked,
        item_metrics=item_metrics,
    )


def load_reply_run(
    path: Path, countries: tuple[str, ...], label: str, notes: Notes
) -> RunScores | None:
    """One reply file -> a run scored against its own country, or `countries` if it has none."""
    parsed = parse_reply_file_name(path.name)
    if parsed is None:
        notes.add(
            f"{path}: not named like the paper's reply files "
            "(wvs_result_<template>[_<country>]_<run>.json, template one of "
            f"{', '.join(PAPER_TEMPLATE_NAMES)}); skipped"
        )
        return None
    template, country, index = parsed
    try:
        answers = parse_replies(read_reply_file(path))
    except CulturespaError as exc:
        notes.add(f"{exc}; skipped")
        return None
    targets = (country,) if country else countries
    # The release numbers its runs (_0, _1, _2: the paper's seeds); runs of one template are
    # averaged in the report as lm-eval runs of different seeds are.
    run = RunScores(source=path, model=label, label=label, date="", seed=index)
    for cc in targets:
        run.tasks.append(reply_task(answers, template, cc, f"{path.name} ({cc})"))
    scored = ",".join(targets)
    run.provenance = {
        "origin": "reply file",
        "file": str(path),
        "model": label,
        "adapter": None,
        "release": "CultureSPA release format: [{Q_id, answer}], the paper's parser and score",
        "template": template,
        "run_index": index,
        "countries": list(targets),
        "replies": len(answers),
        "valid_replies": sum(a is not None for a in answers.values()),
        "command": f"culturespa score {path} --country {scored}",
    }
    return run


def default_reply_countries(runs: list[RunScores], reply_files: list[Path]) -> tuple[str, ...]:
    """The countries the other inputs cover, so that rows compare like with like; else the 18."""
    present = {task.country for run in runs for task in run.tasks}
    for path in reply_files:
        parsed = parse_reply_file_name(path.name)
        if parsed and parsed[1]:
            present.add(parsed[1])
    return tuple(cc for cc in WAVE7_COUNTRIES if cc in present) or PAPER_COUNTRIES


def load_inputs(
    paths: list[str | Path],
    countries: tuple[str, ...] | None = None,
    replies_label: str = DEFAULT_REPLIES_LABEL,
    notes: Notes | None = None,
) -> tuple[list[RunScores], Notes]:
    """lm-eval results and reply files under `paths` -> runs (problems become notes).

    Culture-unaware reply files are scored against `countries`; by default against the countries
    that the other inputs cover, or the paper's 18 when there are no others.
    """
    notes = notes if notes is not None else Notes()
    result_paths, reply_files = split_inputs(paths)
    runs, notes = load_runs(result_paths, notes) if result_paths else ([], notes)
    if reply_files:
        targets = countries or default_reply_countries(runs, reply_files)
        for path in reply_files:
            run = load_reply_run(path, targets, replies_label, notes)
            if run is not None and run.tasks:
                runs.append(run)
    return runs, notes
