"""Read lm-eval results files (`results_<date>.json`) and their sample logs into per-task scores."""

from __future__ import annotations

import json
import logging
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturespa.bounded_input import BoundExceeded, iter_json_lines, loads_bounded
from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.prompts.task_names import WAYS, TaskName, parse_task_name
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.damage import (
    DamagedSample,
    check_sample_shape,
    check_task_config,
    metric_problem,
)
from culturespa.report.survey_of_run import survey_text
from culturespa.run_files import RESULTS_GLOB, run_date_id, samples_file_name, samples_of_run_glob
from culturespa.scoring.answers import MAX_VALID_ANSWER, parse_answer
from culturespa.scoring.metric_names import ALIGNMENT, ALIGNMENT_JSD, ALIGNMENT_W1, REPORTED_METRICS
from culturespa.scoring.stated import parse_stated_distribution
from culturespa.survey.countries import COUNTRIES, WAVE7_COUNTRIES
from culturespa.survey.items import scored_items

logger = logging.getLogger(__name__)

_QID_KEYS = ("qid", "Q_id", "question_id", "item")


class Notes:
    """Problems met while reading, reported to the user instead of aborting the whole report."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        logger.debug(message)
        self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)


@dataclass
class TaskResult:
    """One WVS task of one run: its aggregated metrics and, when logged, the per-item answers."""

    task: str
    template: str
    way: str  # the way of asking (culturespa.prompts.task_names.WAYS)
    country: str
    metrics: dict[str, float]
    answers: dict[str, int | None] | None = None  # item id -> option number (None: invalid reply)
    logged_ci: tuple[float, float] | None = None  # from the results file's "culturespa" block
    item_metrics: dict[str, dict[str, float]] | None = None  # item id -> per-item metric values

    @property
    def generation(self) -> bool:
        """Sampled replies parsed for their first integer (the paper's way)."""
        return self.way == "gen"


@dataclass
class RunScores:
    """The WVS tasks of one lm-eval results file, with the model they belong to."""

    source: Path
    model: str
    label: str
    date: str
    seed: int | None = None  # lm-eval's config.random_seed: runs that differ by seed are averaged
    tasks: list[TaskResult] = field(default_factory=list)
    base_model: str = ""  # the model without its adapter (lm-eval's `pretrained`)
    adapter_kind: str = "base"  # base (no adapter), joint, or specific (one adapter per country)
    provenance: dict[str, Any] = field(default_factory=dict)  # see run_provenance


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


def _model_args(config: dict[str, Any]) -> dict[str, str]:
    """The run's model arguments as text (a dict, or lm-eval's 'k=v,k2=v2' string)."""
    from culturespa.inference.model_args import parse_model_args

    args = config.get("model_args") or {}
    try:
        parsed = parse_model_args(args if isinstance(args, dict) else str(args))
    except CulturespaError:
        # Only labels come from here: keep the well-formed pairs of a damaged string.
        parsed = dict(p.split("=", 1) for p in str(args).split(",") if "=" in p)
    return {str(k).strip(): str(v).strip() for k, v in parsed.items() if v is not None}


def _short_name(path: str) -> str:
    from culturespa.inference.default_model import CHECKPOINT_NAME

    parts = [p for p in re.split(r"[\\/]", path.rstrip("/\\")) if p]
    if not parts:
        return path
    if parts[-1] == CHECKPOINT_NAME:
        return "SmolLM2-135M-Instruct"
    # Hub ids keep their organisation; local folders keep their last two parts.
    return "/".join(parts[-2:]) if len(parts) >= 2 else parts[-1]


def _country_placeholder(adapter: str, countries: set[str]) -> str:
    """Replace a country code that names a per-country adapter ('.../usa') by '{CC}'."""
    for cc in countries:
        pattern = re.compile(rf"(?<![A-Za-z]){cc}(?![A-Za-z])", re.IGNORECASE)
        if pattern.search(adapter):
            return pattern.sub("{CC}", adapter)
    return adapter


NO_RECORD = "no record"
"""`adapter_country` of an adapter folder without a readable training record."""


def adapter_country(adapter: str) -> str | None:
    """The country of a culture-specific adapter, from its training record
    (`culturespa_training.json`, written next to the adapter): an ISO-3 code, None for a
    culture-joint adapter, NO_RECORD where the record is not there (the folder moved, or an
    adapter trained by other tools)."""
    from culturespa.bounded_input import read_json_file
    from culturespa.run_files import TRAINING_RECORD

    record_file = Path(adapter) / TRAINING_RECORD
    try:
        record = read_json_file(record_file) if record_file.is_file() else None
    except (CulturespaError, OSError):
        record = None
    if not isinstance(record, dict):
        return NO_RECORD
    country = record.get("country")
    return str(country).upper() if isinstance(country, str) and country else None


def _specific_adapter(adapter: str, countries: set[str]) -> str | None:
    """The adapter's path with its country as '{CC}' when it is one of a set of culture-specific
    adapters, so that their runs merge into one row: the country read from its training record;
    without a record, the run's one country where the path names it."""
    country = adapter_country(adapter)
    if country is None:
        return None
    if country != NO_RECORD:
        placed = _country_placeholder(adapter, {country})
        return placed if placed != adapter else str(Path(adapter).parent / "{CC}")
    if len(countries) == 1:
        placed = _country_placeholder(adapter, countries)
        return placed if placed != adapter else None
    return None


def model_identity(config: dict[str, Any], countries: set[str]) -> tuple[str, str, str, str]:
    """(model id, display label, base model, adapter kind) of a run: the base model, plus its
    adapter when one is loaded; kind base, joint or specific (see `_specific_adapter`)."""
    args = _model_args(config)
    base = args.get("pretrained") or str(config.get("model_name") or config.get("model") or "?")
    adapter = args.get("peft") or args.get("lora") or ""
    model = f"{base}+{adapter}" if adapter else base
    if not adapter:
        return model, _short_name(base), base, "base"
    specific = _specific_adapter(adapter, countries)
    shown = specific if specific is not None else adapter
    kind = "joint" if specific is None else "specific"
    return model, f"{_short_name(base)} + {_short_name(shown)}", base, kind


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


def _qid_of(sample: dict[str, Any]) -> str | None:
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    for source in (doc, sample):
        for key in _QID_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value in scored_items():
                return value
    return None


def _first(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def sample_answer(sample: dict[str, Any], qid: str, way: str) -> int | None:
    """The option (survey code) a logged sample chose: its logged answer, else re-read from the
    responses (for reversed options through the doc's `options`, the codes in listed order)."""
    logged = sample.get("alignment")  # culturespa_tasks log {"answer", "majority", "max_distance"}
    if isinstance(logged, dict) and "answer" in logged:
        answer = logged["answer"]
        if not isinstance(answer, int) or isinstance(answer, bool):
            return None
        if not 0 <= answer <= MAX_VALID_ANSWER:
            raise DamagedSample(
                f"field 'alignment.answer' is {show(answer)}, beyond what the paper's parser "
                f"gives (0..{MAX_VALID_ANSWER})"
            )
        return answer
    responses = sample.get("filtered_resps") or sample.get("resps") or []
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    check_sample_shape(responses, doc)
    if way == "gen":
        reply = _first(responses)
        return parse_answer(reply) if isinstance(reply, str) else None
    if way == "dist":
        return _stated_choice(_first(responses), qid, doc)
    scores = []
    for resp in responses:
        head = resp
        while isinstance(head, list) and head:
            head = head[0]
        if not isinstance(head, (int, float)) or isinstance(head, bool):
            return None
        scores.append(float(head))
    numbers = doc.get("options") or list(scored_items()[qid].option_numbers)
    if not scores or len(scores) != len(numbers):
        return None
    return int(numbers[max(range(len(scores)), key=scores.__getitem__)])


def _stated_choice(reply: Any, qid: str, doc: dict[str, Any]) -> int | None:
    """The option with the largest share of a stated-distribution reply (None if unusable)."""
    item = scored_items()[qid]
    codes = doc.get("options") or list(item.option_numbers)
    shown = doc.get("shown") or codes
    texts = doc.get("texts") or list(item.options)
    if not isinstance(reply, str) or len({len(codes), len(shown), len(texts)}) != 1:
        return None
    shares = parse_stated_distribution(reply, shown, texts).shares
    return None if shares is None else int(codes[max(range(len(codes)), key=shares.__getitem__)])


def read_samples(path: Path, way: str, notes: Notes) -> tuple[dict, dict]:
    """Per-item answers and numeric per-item metrics from one samples_<task>_<date>.jsonl,
    read a line at a time. A line that is not JSON (a killed run's last line) is skipped with a
    note; a line that breaks a bound or has a field of the wrong shape is an error naming the
    file, line and field."""
    answers: dict[str, int | None] = {}
    item_metrics: dict[str, dict[str, float]] = {}
    bad = 0
    fix = "fix or remove it, or move its results file away"
    # -Infinity is a real log-likelihood; as a metric it is refused (metric_problem).
    samples = iter_json_lines(path, allow_nan=True, what="sample log ", allow_infinity=True)
    for number, sample in samples:
        if isinstance(sample, BoundExceeded):
            raise CulturespaError(f"sample log {path}: line {number}: refused, {sample}; {fix}")
        qid = _qid_of(sample) if isinstance(sample, dict) else None
        if qid is None:
            bad += 1
            continue
        try:
            answers[qid] = sample_answer(sample, qid, way)
            item_metrics[qid] = _item_metrics(sample)
        except DamagedSample as exc:
            raise CulturespaError(f"sample log {path}: line {number}: {exc}; {fix}") from None
    if bad:
        notes.add(f"{path}: skipped {bad} unreadable line(s) (bad JSON or no WVS item id)")
    return answers, item_metrics


def _item_metrics(sample: dict[str, Any]) -> dict[str, float]:
    """The numeric per-item metrics of a sample (NaN dropped); impossible values raise."""
    out = {}
    for metric in REPORTED_METRICS:
        value = sample.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = metric_problem(metric, float(value))
            if problem:
                raise DamagedSample(f"field {metric!r}: {problem}")
            if not math.isnan(value):
                out[metric] = float(value)
    return out


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


def load_run(path: Path, notes: Notes) -> RunScores | None:
    """One results file -> its WVS tasks; None (with a note) if it holds nothing usable."""
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
        template, way, cc = identity.template, identity.way, identity.country
        entry = data["results"][name]
        if not isinstance(entry, dict):
            raise CulturespaError(
                f"{path}: results entry {name!r} is {show(entry)}, not an object of metrics; "
                "the file is damaged"
            )
        try:
            metrics = {m: v for m in REPORTED_METRICS if (v := _metric_value(entry, m)) is not None}
        except DamagedSample as exc:
            raise CulturespaError(f"{path}: results.{name}: {exc}; the file is damaged") from None
        if not any(m in metrics for m in (ALIGNMENT, ALIGNMENT_W1, ALIGNMENT_JSD)):
            notes.add(f"{path}: task {name} has no alignment metric; skipped")
            continue
        task = TaskResult(name, template, way, cc, metrics, logged_ci=cis.get(name))
        sample_file = path.with_name(samples_file_name(name, run.date))
        if sample_file.is_file():
            task.answers, task.item_metrics = read_samples(sample_file, way, notes)
            if not task.answers:
                task.answers = task.item_metrics = None
        else:
            missing_samples.append(name)
        run.tasks.append(task)
    missing_samples = [n for n in missing_samples if n not in cis]
    if missing_samples:
        notes.add(
            f"{path}: no sample logs for {len(missing_samples)} task(s) "
            f"(e.g. {samples_file_name(missing_samples[0], run.date)}): no intervals for them; "
            "run lm-eval with --log_samples to get them"
        )
    return run if run.tasks else None


_ADAPTER_KEYS = ("peft", "lora", "lora_local_path")
_DATE_ID = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})")


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and str(value) else None


def readable_date(date_id: str) -> str:
    """lm-eval's file date '2025-01-02T10-00-00.123' -> '2025-01-02 10:00:00' (the run's local time)."""
    match = _DATE_ID.match(date_id)
    return f"{match[1]} {match[2]}:{match[3]}:{match[4]}" if match else date_id


def _task_versions(data: dict[str, Any], tasks: list[str]) -> dict[str, str | None]:
    """Each task's `metadata.version` from the results file's configs (else its `versions`)."""
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    out = {}
    for task in tasks:
        config = configs.get(task) if isinstance(configs.get(task), dict) else {}
        metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        out[task] = _text(metadata.get("version", versions.get(task)))
    return out


def _task_list(tasks: list[str]) -> str:
    """Comma-separated task names, a template's 19 countries written as one glob."""
    by_prefix: dict[str, list[str]] = {}
    for task in tasks:
        by_prefix.setdefault(task[:-4], []).append(task)
    parts = []
    for prefix, names in by_prefix.items():
        parts.extend([f"{prefix}_*"] if len(names) == len(COUNTRIES) else names)
    return ",".join(parts)


def rebuilt_command(data: dict[str, Any], path: Path, tasks: list[str]) -> str:
    """A command that reproduces the run, rebuilt from the results file (lm-eval keeps no argv).

    Results written by `culturespa eval` (they hold a "culturespa" block) get a `culturespa eval`
    command, others an `lm_eval` one; sample logs next to the file add the log-samples flag.
    """
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _model_args(config)
    backend = _text(config.get("model")) or "hf"
    chat = bool(data.get("chat_template"))
    limit, seed = _text(config.get("limit")), _text(config.get("random_seed"))
    logged = any(path.parent.glob(samples_of_run_glob(run_date_id(path))))
    survey = survey_text(data, path)
    if isinstance(data.get("culturespa"), dict):
        model = args.pop("pretrained", None) or args.pop("model", None) or "?"
        adapter = next((args.pop(k) for k in _ADAPTER_KEYS if k in args), None)
        if backend == "vllm":
            args.pop("seed", None)
        parts = ["culturespa eval", f"--model {shlex.quote(model)}", f"--backend {backend}"]
        parts += [f"--peft {shlex.quote(adapter)}"] if adapter else []
        extra = ",".join(f"{k}={v}" for k, v in args.items())
        parts += [f"--model-args {shlex.quote(extra)}"] if extra else []
        parts.append(f"--tasks {shlex.quote(_task_list(tasks))}")
        parts += [f"--survey {shlex.quote(survey)}"] if survey else []
        parts += [] if chat else ["--no-chat-template"]
        parts += [f"--limit {limit}"] if limit else []
        parts += [f"--seed {seed}"] if seed else []
        parts += ["--log-samples"] if logged else []
        parts.append(f"--output-path {shlex.quote(str(path.parent.parent))}")
        return " ".join(parts)
    model_args = ",".join(f"{k}={v}" for k, v in args.items())
    parts = ["lm_eval", f"--model {backend}", f"--model_args {shlex.quote(model_args)}"]
    parts.append(f"--tasks {shlex.quote(_task_list(tasks))}")
    if survey:  # a task folder built for the survey folder (`culturespa tasks build`)
        parts[:0] = [f"culturespa tasks build --survey {shlex.quote(survey)} --out TASKDIR &&"]
    parts.append(
        "--include_path TASKDIR" if survey else '--include_path "$(culturespa tasks-path)"'
    )
    parts += ["--apply_chat_template"] if chat else []
    parts += [f"--limit {limit}"] if limit else []
    parts += [f"--seed {seed}"] if seed else []
    parts += ["--log_samples"] if logged else []
    parts.append(f"--output_path {shlex.quote(str(path.parent.parent))}")
    return " ".join(parts)


def run_provenance(data: dict[str, Any], path: Path, tasks: list[str]) -> dict[str, Any]:
    """Where a run's scores come from: model, adapter, versions, date, command, results file."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _model_args(config)
    return {
        "origin": "lm-eval results",
        "file": str(path),
        "model": args.get("pretrained") or args.get("model") or _text(config.get("model_name")),
        "adapter": next((args[k] for k in _ADAPTER_KEYS if k in args), None),
        "backend": _text(config.get("model")),
        "model_args": args,
        "lm_eval_version": _text(data.get("lm_eval_version")),
        "transformers_version": _text(data.get("transformers_version")),
        "git_hash": _text(data.get("git_hash")),
        "task_versions": _task_versions(data, tasks),
        "date": readable_date(run_date_id(path)),
        "limit": config.get("limit") if isinstance(config.get("limit"), (int, float)) else None,
        "seed": config.get("random_seed") if isinstance(config.get("random_seed"), int) else None,
        "chat_template": bool(data.get("chat_template")),
        "survey": survey_text(data, path),  # None: the shipped survey
        "command": rebuilt_command(data, path, tasks),
    }


def load_runs(paths: list[str | Path], notes: Notes | None = None) -> tuple[list[RunScores], Notes]:
    """Load every results file under `paths`; problems become notes, valid runs are kept."""
    notes = notes if notes is not None else Notes()
    runs = []
    for file in find_results_files(paths, notes):
        run = load_run(file, notes)
        if run is not None:
            runs.append(run)
    return runs, notes


def finite(value: float | None) -> bool:
    """Whether a value is a real number (not None, not NaN)."""
    return value is not None and not math.isnan(value)


@dataclass(frozen=True)
class LossPoint:
    """One logged optimizer step of a training run: its step, epoch (0..1 for one epoch), loss."""

    step: int
    epoch: float
    loss: float


def read_loss_history(adapter_dir: str | Path) -> list[LossPoint]:
    """The training loss per logged step from the `trainer_state.json` that TRL's trainer saves
    next to an adapter (`log_history` entries with a `loss`)."""
    path = Path(adapter_dir)
    path = path / "trainer_state.json" if path.is_dir() else path
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CulturespaError(f"{path}: no trainer state (train the adapter first)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CulturespaError(f"{path}: not a readable trainer state ({exc})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise CulturespaError(f"{path}: no log_history list")
    points = []
    for entry in history:
        if not isinstance(entry, dict):
            continue
        loss, step, epoch = entry.get("loss"), entry.get("step"), entry.get("epoch", 0.0)
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in (loss, step, epoch)
        )
        if numbers:
            points.append(LossPoint(int(step), float(epoch), float(loss)))
    return points
