"""Read lm-eval results files (`results_<date>.json`) into per-task scores, with the answers of
their sample logs (`culturespa.report.sample_logs`) when these were logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturespa.bounded_input import BoundExceeded, loads_bounded
from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.prompts.task_names import WAYS, TaskName, parse_task_name
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.damage import DamagedSample, check_task_config, metric_problem
from culturespa.report.provenance import run_provenance
from culturespa.report.run_identity import model_identity
from culturespa.report.run_scores import Notes, RunScores, TaskResult
from culturespa.report.sample_logs import read_samples
from culturespa.run_files import RESULTS_GLOB, run_date_id, samples_file_name
from culturespa.scoring.metric_names import ALIGNMENT, ALIGNMENT_JSD, ALIGNMENT_W1, REPORTED_METRICS
from culturespa.survey.countries import WAVE7_COUNTRIES


def task_identity(name: str, config: Any = None) -> TaskName | None:
    """What a results entry is (way of asking, template, country), read from the task's own config
    in the results file (`dataset_kwargs`), or from its name for older files; None for groups and
    for other tasks."""
    kwargs = config.get("dataset_kwargs") if isinstance(config, dict) else None
    if isinstance(kwargs, dict):
        template, country = kwargs.get("template"), str(kwargs.get("country", "")).upper()
        way = kwargs.get("way")
        if way is None and isinstance(config, dict):
            way = "gen" if config.get("output_type") == "generate_until" else "loglik"
        texts = all(isinstance(v, str) for v in (template, way))
        if texts and template in TEMPLATES and country in WAVE7_COUNTRIES and way in WAYS:
            return TaskName(way, template, country)
    parsed = parse_task_name(name)
    return parsed if parsed is not None and parsed.country is not None else None


def find_results_files(paths: list[str | Path], notes: Notes) -> list[Path]:
    """Expand folders to the results_*.json files under them; keep files given by name. Hidden
    folders are skipped: the staging folders of killed runs are not runs."""
    from culturespa.output_folder import is_hidden_part

    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob(RESULTS_GLOB) if p.is_file() and not is_hidden_part(p, path)
            )
            if not files:
                notes.add(f"{path}: no lm-eval results files ({RESULTS_GLOB}) in this folder")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            notes.add(f"{path}: no such file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def _metric_value(entry: dict[str, Any], metric: str) -> float | None:
    """The metric's value in a results entry; None when absent, NaN kept (lm-eval's "no value":
    a row with no valid reply is shown, not ranked); a value no metric can have (1e308, a share
    above 1) raises DamagedSample naming the key."""
    for key, value in entry.items():
        name = key.split(",", 1)[0]
        if name == metric and isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = metric_problem(metric, float(value))
            if problem:
                raise DamagedSample(f"metric {key!r}: {problem}")
            return float(value)
    return None


def _logged_intervals(data: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Intervals `culturespa eval` stores in the results file (used when sample logs are gone)."""
    block = data.get("culturespa")
    raw = block.get("alignment_ci95") if isinstance(block, dict) else None
    out = {}
    for task, pair in (raw or {}).items() if isinstance(raw, dict) else ():
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, (int, float)) for v in pair)
        ):
            out[task] = (float(pair[0]), float(pair[1]))
    return out


def _read_results(path: Path, notes: Notes) -> dict[str, Any] | None:
    """A results file's JSON object; None (with a note) for a file that is not one."""
    try:
        data = loads_bounded(path.read_text(encoding="utf-8"), allow_nan=True)
    except json.JSONDecodeError as exc:
        notes.add(f"{path}: not valid JSON (truncated?) at line {exc.lineno}: {exc.msg}; skipped")
        return None
    except BoundExceeded as exc:
        raise CulturespaError(f"{path}: refused, {exc}; the file is damaged") from None
    except (OSError, UnicodeDecodeError) as exc:
        notes.add(f"{path}: cannot be read ({exc}); skipped")
        return None
    if isinstance(data, list):
        notes.add(
            f"{path}: a list, not an lm-eval results file; a reply file must be named as the "
            "paper's release names them (wvs_result_<template>[_<country>]_<run>.json); skipped"
        )
        return None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        notes.add(f"{path}: no 'results' object, not an lm-eval results file; skipped")
        return None
    return data


def _task_metrics(path: Path, name: str, entry: Any) -> dict[str, float]:
    """The reported metrics of one results entry; a damaged entry is an error naming it."""
    if not isinstance(entry, dict):
        raise CulturespaError(
            f"{path}: results entry {name!r} is {show(entry)}, not an object of metrics; "
            "the file is damaged"
        )
    try:
        return {m: v for m in REPORTED_METRICS if (v := _metric_value(entry, m)) is not None}
    except DamagedSample as exc:
        raise CulturespaError(f"{path}: results.{name}: {exc}; the file is damaged") from None


def load_run(path: Path, notes: Notes) -> RunScores | None:
    """One results file -> its WVS tasks; None (with a note) if it holds nothing usable."""
    data = _read_results(path, notes)
    if data is None:
        return None
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    for name in data["results"]:
        check_task_config(path, name, configs.get(name))
    found = {name: task_identity(name, configs.get(name)) for name in data["results"]}
    ours = {name: parsed for name, parsed in found.items() if parsed}
    if not ours:
        others = ", ".join(sorted(found)[:5]) or "none"
        notes.add(f"{path}: no culturespa wvs_* tasks (found: {others}); skipped")
        return None
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model, label, base, kind = model_identity(config, {t.country for t in ours.values()})
    seed = config.get("random_seed")
    run = RunScores(
        source=path,
        model=model,
        label=label,
        date=run_date_id(path),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        base_model=base,
        adapter_kind=kind,
    )
    run.provenance = run_provenance(data, path, sorted(ours))
    cis = _logged_intervals(data)
    missing_samples = []
    for name, identity in sorted(ours.items()):
        metrics = _task_metrics(path, name, data["results"][name])
        if not any(m in metrics for m in (ALIGNMENT, ALIGNMENT_W1, ALIGNMENT_JSD)):
            notes.add(f"{path}: task {name} has no alignment metric; skipped")
            continue
        way, logged_ci = identity.way, cis.get(name)
        task = TaskResult(
            name, identity.template, way, identity.country, metrics, logged_ci=logged_ci
        )
        sample_file = path.with_name(samples_file_name(name, run.date))
        if sample_file.is_file():
            task.answers, task.item_metrics = read_samples(sample_file, way, notes)
            if not task.answers:
                task.answers = task.item_metrics = None
        else:
            missing_samples.append(name)
        run.tasks.append(task)
    _note_missing_samples(path, run.date, [n for n in missing_samples if n not in cis], notes)
    return run if run.tasks else None


def _note_missing_samples(path: Path, date: str, tasks: list[str], notes: Notes) -> None:
    """One note for the tasks of a run without sample logs (and without logged intervals)."""
    if tasks:
        notes.add(
            f"{path}: no sample logs for {len(tasks)} task(s) "
            f"(e.g. {samples_file_name(tasks[0], date)}): no intervals for them; "
            "run lm-eval with --log_samples to get them"
        )


def load_runs(paths: list[str | Path], notes: Notes | None = None) -> tuple[list[RunScores], Notes]:
    """Load every results file under `paths`; problems become notes, valid runs are kept."""
    notes = notes if notes is not None else Notes()
    runs = []
    for file in find_results_files(paths, notes):
        run = load_run(file, notes)
        if run is not None:
            runs.append(run)
    return runs, notes
