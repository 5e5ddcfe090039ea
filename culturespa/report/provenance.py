"""Where a run's scores come from, as a report shows it: model, adapter, backend, versions, date,
and a command that reproduces the run, all rebuilt from its lm-eval results file."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from culturespa.report.run_identity import run_model_args
from culturespa.report.survey_of_run import survey_text
from culturespa.run_files import run_date_id, samples_of_run_glob
from culturespa.survey.countries import COUNTRIES

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
    args = run_model_args(config)
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
    args = run_model_args(config)
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
