"""What a training run leaves next to its adapter: the model card, a run record, the adapter index."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from culturespa.atomic import write_json_atomic, write_text_atomic
from culturespa.errors import CulturespaError
from culturespa.prompts.task_names import group_name, task_of_group
from culturespa.run_files import ADAPTER_INDEX, MODEL_CARD, TRAINING_RECORD
from culturespa.survey.countries import get_country
from culturespa.text_cells import finite_json


@dataclass
class RunRecord:
    """What one training run used and produced: what its model card and `TRAINING_RECORD` record."""

    base_model: str
    recipe: str | None  # the recipe YAML's path; None for command-line flags only
    command: str
    data: dict[str, Any]  # `describe_dataset` of the training set
    hyperparameters: dict[str, Any]
    lora: dict[str, Any]  # {} when training all weights
    metrics: dict[str, Any]
    chat_template: str | None  # None: the tokenizer's own
    end_of_turn: str  # the token the loss mask covers after the answer ('' for none)
    country: str | None = None  # ISO-3 code of a culture-specific adapter
    distributed: dict[str, Any] | None = None  # `distributed_summary` of the run


def write_run_files(output_dir: str | Path, run: RunRecord) -> Path:
    """Write the model card (README.md) and a machine-readable culturespa_training.json."""
    import peft
    import torch
    import transformers
    import trl

    from culturespa import __version__

    output_dir = Path(output_dir)
    versions = {
        "culturespa": __version__,
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch": torch.__version__,
    }
    record = {
        "base_model": run.base_model,
        "recipe": run.recipe,
        "command": run.command,
        "country": run.country,
        "data": run.data,
        "hyperparameters": run.hyperparameters,
        "distributed": run.distributed or {},
        "lora": run.lora,
        "metrics": run.metrics,
        "chat_template": run.chat_template,
        "loss_mask": f"answer tokens + {run.end_of_turn or 'nothing'}",
        "versions": versions,
    }
    text = json.dumps(finite_json(record), indent=2, default=str, allow_nan=False)  # NaN: null
    write_text_atomic(output_dir / TRAINING_RECORD, text + "\n")

    variant = ", ".join(run.data.get("variants") or []) or "unknown"
    template = "cross_culture_thinking" if "cross_culture_thinking" in variant else "culture_aware"
    family = group_name("gen", template)
    country = run.country
    card = render_model_card(
        title=f"CultureSPA LoRA adapter ({variant}{', ' + country if country else ''})",
        base_model=run.base_model,
        recipe=run.recipe,
        command=run.command,
        data=run.data,
        variant=variant,
        chat_template=run.chat_template,
        end_of_turn=run.end_of_turn,
        version_line=", ".join(f"{k} {v}" for k, v in versions.items()),
        hyperparameters=run.hyperparameters,
        lora=run.lora,
        metrics=run.metrics,
        output_dir=output_dir,
        tasks=task_name_for(family, country),
    )
    return write_text_atomic(output_dir / MODEL_CARD, card)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def render_model_card(**fields: Any) -> str:
    """The adapter's README.md from `model_card.md.jinja` (the fields its placeholders name)."""
    import jinja2

    source = resources.files("culturespa.training").joinpath("model_card.md.jinja")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["fmt"] = _fmt
    return env.from_string(source.read_text(encoding="utf-8")).render(**fields)


def task_name_for(family: str, country: str | None) -> str:
    """The group (culture-joint) or the country's task (culture-specific) to evaluate on."""
    return task_of_group(family, country) if country else family


def write_adapter_index(output_dir: str | Path, adapters: dict[str, str], base_model: str) -> Path:
    """Write `adapters.json` ({"base_model", "adapters": {ISO3: path}}) for culture-specific runs."""
    return write_json_atomic(
        Path(output_dir) / ADAPTER_INDEX, {"base_model": base_model, "adapters": adapters}
    )


HYPERPARAMETER_FIELDS: tuple[str, ...] = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "world_size",
    "bf16",
    "max_length",
    "assistant_only_loss",
    "seed",
)


def hyperparameters(training_args) -> dict[str, Any]:
    """The training fields the model card lists, with the effective batch size."""
    values = {}
    for name in HYPERPARAMETER_FIELDS:
        value = getattr(training_args, name, None)
        values[name] = getattr(value, "value", value)  # enums such as SchedulerType
    values["effective_batch_size"] = (
        training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
    )
    return values


def distributed_summary(training_args) -> dict[str, Any]:
    """How the run was spread: accelerate's distributed type, the process group's backend, the
    number of processes and the main process's device
    (`{"type": "MULTI_CPU", "backend": "gloo", "processes": 2, "device": "cpu"}`)."""
    state = training_args.distributed_state
    kind = getattr(state, "distributed_type", None)
    return {
        "type": str(getattr(kind, "value", kind)),
        "backend": getattr(state, "backend", None),
        "processes": int(getattr(state, "num_processes", 1)),
        "device": str(training_args.device),
    }


def lora_summary(peft_config) -> dict[str, Any]:
    """The LoRA fields the model card lists ({} when training all weights)."""
    if peft_config is None:
        return {}
    targets = peft_config.target_modules
    if isinstance(targets, (set, list, tuple)):
        targets = ",".join(sorted(targets))
    return {
        "r": peft_config.r,
        "lora_alpha": peft_config.lora_alpha,
        "lora_dropout": peft_config.lora_dropout,
        "target_modules": targets,
    }


def read_adapter_index(path: str | Path) -> tuple[str, dict[str, str]]:
    """(base model, {ISO3: adapter dir}) from a culture-specific run's adapters.json (or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / ADAPTER_INDEX
    if not path.is_file():
        raise CulturespaError(f"{path}: no {ADAPTER_INDEX}; train with --countries first")
    from culturespa.bounded_input import read_json_file

    index = read_json_file(path)
    adapters = index.get("adapters") if isinstance(index, dict) else None
    if not isinstance(adapters, dict) or not adapters:
        raise CulturespaError(f"{path}: 'adapters' must map ISO-3 codes to adapter folders")
    return str(index.get("base_model", "")), {
        get_country(c).code: str(p) for c, p in adapters.items()
    }
