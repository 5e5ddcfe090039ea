"""Helpers for `recipes/sft.py`: script arguments, SFT data per variant, chat-template and loss-mask
checks, and the model card written next to each adapter."""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from culturespa.atomic import (
    check_output_dir,
    replace_dir_atomic,
    staging_dir,
    write_json_atomic,
    write_text_atomic,
)
from culturespa.countries import ALL_COUNTRIES, get_country
from culturespa.errors import CulturespaError
from culturespa.fields import accepts, check_field_types, describe, invalid

logger = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("culture_joint", "cct_joint", "culture_specific")
"""Training sets the data builder writes under `<data_run_dir>/sft/`."""

SHIPPED_TEMPLATES: tuple[str, ...] = ("chatml", "llama3")
"""Chat templates in `culturespa/templates/` (each marks the assistant answer with `{% generation %}`)."""

ROLES: tuple[str, ...] = ("system", "user", "assistant")

CARD_FILE = "README.md"
RUN_FILE = "culturespa_training.json"
INDEX_FILE = "adapters.json"


@dataclass
class CultureSPAScriptArguments:
    """Arguments of `recipes/sft.py` that are not TRL's SFTConfig or ModelConfig fields."""

    dataset_path: str | None = field(
        default=None,
        metadata={
            "help": "A training set written by `culturespa build-data`: a `save_to_disk` folder or a "
            "JSONL file (e.g. runs/data/sft/culture_joint). With `countries`, the parent folder "
            "that holds one set per country (runs/data/sft/culture_specific)."
        },
    )
    countries: str | None = field(
        default=None,
        metadata={
            "help": "Culture-specific training: 'all' or comma-separated ISO-3 codes (USA,CHN). "
            "Trains one adapter per country from `dataset_path/<ISO3>` into `output_dir/<ISO3>`."
        },
    )
    chat_template: str | None = field(
        default=None,
        metadata={
            # No percent sign here: argparse formats help texts with %.
            "help": "Training chat template whose assistant answer is marked as a Jinja "
            "`generation` block (the loss mask): a shipped name "
            f"({', '.join(SHIPPED_TEMPLATES)}) or a .jinja path. None keeps the tokenizer's own, "
            "which must then carry the markers."
        },
    )
    check_template_matches_model: bool = field(
        default=True,
        metadata={
            "help": "Fail when `chat_template` renders the training examples differently from the "
            "model's own template (training and inference would see different text)."
        },
    )
    mask_check_examples: int = field(
        default=64,
        metadata={
            "help": "Number of training examples whose assistant-only loss mask is checked to cover "
            "exactly the answer tokens (plus the end-of-turn token) before training; 0 skips."
        },
    )
    effective_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Examples per optimizer step over all processes. When set, "
            "gradient_accumulation_steps = effective_batch_size / (per_device_train_batch_size x "
            "number of processes), so the same recipe keeps the paper's batch on 1 or 8 GPUs."
        },
    )
    max_train_examples: int | None = field(
        default=None,
        metadata={"help": "Train on the first N examples only (smoke runs and tests)."},
    )

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.countries is not None:
            self.countries = self.countries.strip()
            if not self.countries:
                self.countries = None
        if self.mask_check_examples < 0:
            raise invalid("mask_check_examples", self.mask_check_examples, "an integer >= 0")
        if self.effective_batch_size is not None and self.effective_batch_size < 1:
            raise invalid("effective_batch_size", self.effective_batch_size, "an integer >= 1")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise invalid("max_train_examples", self.max_train_examples, "an integer >= 1")


def training_template_path(name_or_path: str) -> Path:
    """A shipped template name ('llama3') or a .jinja path -> the template file."""
    if name_or_path in SHIPPED_TEMPLATES:
        return Path(
            str(resources.files("culturespa").joinpath("templates", f"{name_or_path}.jinja"))
        )
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise CulturespaError(
            f"chat_template: {name_or_path!r} is neither a shipped template "
            f"({', '.join(SHIPPED_TEMPLATES)}) nor a file"
        )
    return path


def read_training_template(name_or_path: str) -> str:
    """The text of a training chat template; it must mark the answer with `{% generation %}`."""
    path = training_template_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    if "generation" not in text or "endgeneration" not in text:
        raise CulturespaError(
            f"{path}: no {{% generation %}} markers, so no assistant-only loss mask"
        )
    return text


def _validate_messages(messages: Any, where: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise CulturespaError(f"{where}: 'messages' must be a non-empty list")
    for turn in messages:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            raise CulturespaError(f"{where}: every message needs a role in {ROLES}")
        if not isinstance(turn.get("content"), str):
            raise CulturespaError(f"{where}: message content must be a string")
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise CulturespaError(f"{where}: the last message must be a non-empty assistant answer")


def load_sft_dataset(path: str | Path, max_examples: int | None = None):
    """Load one conversational training set (a `save_to_disk` folder or a JSONL file) and check it."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".jsonl":
        dataset = load_dataset("json", data_files=str(path), split="train")
    elif path.is_dir() and (
        (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()
    ):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if "train" not in loaded:
                raise CulturespaError(f"{path}: the dataset has no 'train' split")
            loaded = loaded["train"]
        dataset = loaded
    elif path.with_suffix(".jsonl").is_file():
        dataset = load_dataset("json", data_files=str(path.with_suffix(".jsonl")), split="train")
    else:
        raise CulturespaError(f"{path}: not a saved dataset folder or a .jsonl file")
    if not isinstance(dataset, Dataset) or "messages" not in dataset.column_names:
        raise CulturespaError(f"{path}: no 'messages' column (conversational rows expected)")
    if len(dataset) == 0:
        raise CulturespaError(f"{path}: the training set is empty")
    if max_examples is not None:
        dataset = dataset.select(range(min(max_examples, len(dataset))))
    for index, messages in enumerate(dataset["messages"]):
        _validate_messages(messages, f"{path} row {index}")
    return dataset


def describe_dataset(dataset, path: str | Path) -> dict[str, Any]:
    """What the model card says about a training set: path, size, variants, countries, topics."""

    def distinct(column: str) -> list[str]:
        if column not in dataset.column_names:
            return []
        return sorted({str(v) for v in dataset[column] if v is not None})

    return {
        "path": str(path),
        "examples": len(dataset),
        "variants": distinct("variant"),
        "countries": distinct("country"),
        "topics": len(distinct("topic")),
        "fingerprint": getattr(dataset, "_fingerprint", None),
    }


def _country_set_path(parent: Path, code: str) -> Path | None:
    for candidate in (parent / code, parent / f"{code}.jsonl"):
        if candidate.exists():
            return candidate
    return None


def _is_empty_set(path: Path) -> bool:
    """Whether a saved dataset folder or JSONL file holds no rows (cheap: no row parsing)."""
    if path.is_file():
        return not any(line.strip() for line in path.open(encoding="utf-8"))
    from datasets import DatasetDict, load_from_disk

    loaded = load_from_disk(str(path))
    if isinstance(loaded, DatasetDict):
        return "train" in loaded and len(loaded["train"]) == 0
    return len(loaded) == 0


def culture_specific_sets(parent: str | Path, countries: str) -> dict[str, Path]:
    """The per-country training sets under `parent` for 'all' or 'USA,CHN' (paper order).

    'all' skips countries whose set is empty (with a warning); a named country must have rows."""
    parent = Path(parent).expanduser()
    if not parent.is_dir():
        raise CulturespaError(
            f"dataset_path: {parent} is not a folder of per-country training sets"
        )
    if countries.lower() == "all":
        found = {code: p for code in ALL_COUNTRIES if (p := _country_set_path(parent, code))}
        empty = [code for code, p in found.items() if _is_empty_set(p)]
        if empty:
            logger.warning("skipping countries with empty training sets: %s", ", ".join(empty))
        found = {code: p for code, p in found.items() if code not in empty}
        if not found:
            raise CulturespaError(
                f"{parent}: no per-country training sets (<ISO3>/ or <ISO3>.jsonl)"
            )
        return found
    sets: dict[str, Path] = {}
    for raw in countries.split(","):
        if not raw.strip():
            continue
        code = get_country(raw).code
        path = _country_set_path(parent, code)
        if path is None:
            raise CulturespaError(f"countries: no training set for {code} in {parent}")
        sets[code] = path
    if not sets:
        raise CulturespaError("countries: no country given")
    return sets


def gradient_accumulation_for(effective_batch_size: int, per_device: int, world_size: int) -> int:
    """Accumulation steps that make per_device x world_size x steps equal the effective batch."""
    per_step = per_device * world_size
    steps = effective_batch_size // per_step
    if steps < 1 or steps * per_step != effective_batch_size:
        raise CulturespaError(
            f"effective_batch_size={effective_batch_size} is not a multiple of "
            f"per_device_train_batch_size={per_device} x {world_size} processes"
        )
    return steps


def check_template_matches(tokenizer, training_template: str, examples: list[list[dict]]) -> None:
    """Fail when the training template renders examples differently from the tokenizer's own."""
    shipped = getattr(tokenizer, "chat_template", None)
    if not shipped or shipped == training_template:
        return
    for messages in examples:
        for conversation, prompt in ((messages, False), (messages[:-1], True)):
            ours = tokenizer.apply_chat_template(
                conversation,
                chat_template=training_template,
                tokenize=False,
                add_generation_prompt=prompt,
            )
            theirs = tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=prompt
            )
            if ours != theirs:
                at = next(
                    (i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                    min(len(ours), len(theirs)),
                )
                raise CulturespaError(
                    "chat_template: the training template renders differently from the model's own "
                    f"at character {at} ({ours[at : at + 40]!r} vs {theirs[at : at + 40]!r}); pick the "
                    "template of this model family or set check_template_matches_model: false"
                )


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i))
            start = None
    return runs


def assistant_mask_spans(tokenizer, messages: list[dict], chat_template: str | None) -> list[str]:
    """The text of each contiguous run of tokens that assistant-only loss trains on."""
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=chat_template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    return [tokenizer.decode(ids[a:b]) for a, b in _runs(mask)]


def end_of_turn_tokens(tokenizer) -> set[str]:
    """Special tokens that may close an assistant turn inside the mask (<|im_end|>, <|eot_id|>)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []))
    tokens.update(str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values())
    return {t for t in tokens if t}


def check_assistant_mask(tokenizer, examples: list[list[dict]], chat_template: str | None) -> str:
    """Check that the loss mask covers exactly each answer plus at most one end-of-turn token.

    Returns the end-of-turn token seen ('' if the mask stops at the answer)."""
    eot_tokens = end_of_turn_tokens(tokenizer)
    seen = ""
    for index, messages in enumerate(examples):
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        spans = assistant_mask_spans(tokenizer, messages, chat_template)
        if not spans:
            raise CulturespaError(
                f"training example {index}: the assistant-only loss mask is empty; the chat "
                "template needs {% generation %} markers around the answer"
            )
        if len(spans) != len(answers):
            raise CulturespaError(
                f"training example {index}: {len(spans)} masked spans for {len(answers)} answers"
            )
        for span, answer in zip(spans, answers):
            # Exact text: only the template may trim the answer (Llama-3 does); nothing of the
            # prompt, not even a newline, may be inside the mask.
            body = next((a for a in (answer, answer.strip()) if a and span.startswith(a)), None)
            if body is None:
                raise CulturespaError(
                    f"training example {index}: the loss mask covers {span!r}, not the answer {answer!r}"
                )
            rest = span[len(body) :]
            if rest and rest not in eot_tokens:
                raise CulturespaError(
                    f"training example {index}: the loss mask covers {rest!r} beyond the answer {answer!r}"
                )
            seen = rest or seen
    return seen


def write_run_files(
    output_dir: str | Path,
    *,
    base_model: str,
    recipe: str | None,
    command: str,
    data: dict[str, Any],
    hyperparameters: dict[str, Any],
    lora: dict[str, Any],
    metrics: dict[str, Any],
    chat_template: str | None,
    end_of_turn: str,
    country: str | None = None,
) -> Path:
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
        "base_model": base_model,
        "recipe": recipe,
        "command": command,
        "country": country,
        "data": data,
        "hyperparameters": hyperparameters,
        "lora": lora,
        "metrics": metrics,
        "chat_template": chat_template,
        "loss_mask": f"answer tokens + {end_of_turn or 'nothing'}",
        "versions": versions,
    }
    write_text_atomic(output_dir / RUN_FILE, json.dumps(record, indent=2, default=str) + "\n")

    variant = ", ".join(data.get("variants") or []) or "unknown"
    title = f"CultureSPA LoRA adapter ({variant}{', ' + country if country else ''})"

    def fmt(value: Any) -> str:
        if isinstance(value, float) and math.isfinite(value):
            return f"{value:.4g}"
        return str(value)

    family = "wvs_gen_cross_culture_thinking" if "cct_joint" in variant else "wvs_gen_culture_aware"
    tasks = f"{family}_{country.lower()}" if country else family
    hp_rows = "\n".join(f"| {k} | {fmt(v)} |" for k, v in hyperparameters.items())
    lora_rows = "\n".join(f"| {k} | {fmt(v)} |" for k, v in lora.items())
    metric_rows = "\n".join(f"| {k} | {fmt(v)} |" for k, v in metrics.items())
    version_line = ", ".join(f"{k} {v}" for k, v in versions.items())
    card = f"""---
base_model: {base_model}
library_name: peft
tags: [culturespa, lora, sft, trl, world-values-survey]
---

# {title}

A LoRA adapter for `{base_model}`, trained with `recipes/sft.py` of culturespa (a reproduction of
CultureSPA, Xu et al., arXiv 2410.12971) with loss on the assistant's answer only.

- Recipe: `{recipe or "command-line flags only"}`
- Command: `{command}`
- Data: `{data.get("path")}`: {data.get("examples")} conversations, variant {variant}, \
countries {", ".join(data.get("countries") or []) or "n/a"}, {data.get("topics")} topics
- Chat template: {chat_template or "the tokenizer's own"}; the loss mask covers the answer tokens and \
{end_of_turn or "no end-of-turn token"}
- Versions: {version_line}

## Hyperparameters

| field | value |
| --- | --- |
{hp_rows}

## LoRA

| field | value |
| --- | --- |
{lora_rows}

## Training metrics

| metric | value |
| --- | --- |
{metric_rows}

## Evaluate

```bash
culturespa eval --model {base_model} --peft {output_dir} --tasks {tasks} --output-path runs/eval
lm_eval run --model hf --model_args pretrained={base_model},peft={output_dir} --tasks {tasks} \\
    --include_path "$(culturespa tasks-path)" --apply_chat_template --output_path runs/eval
```

## Data and citation

Survey answers: World Values Survey Wave 7 (WVS Association). Method: Xu, Leng, Yu, Xiong,
"Self-Pluralising Culture Alignment for Large Language Models", NAACL 2025 (arXiv 2410.12971).
"""
    return write_text_atomic(output_dir / CARD_FILE, card)


def write_adapter_index(output_dir: str | Path, adapters: dict[str, str], base_model: str) -> Path:
    """Write `adapters.json` ({"base_model", "adapters": {ISO3: path}}) for culture-specific runs."""
    return write_json_atomic(
        Path(output_dir) / INDEX_FILE, {"base_model": base_model, "adapters": adapters}
    )


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a training recipe; a missing, unreadable or malformed file is an error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CulturespaError(
            f"--config {path} {'is a folder' if path.is_dir() else 'does not exist'}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CulturespaError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise CulturespaError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise CulturespaError(f"{path}: a recipe must be a YAML mapping of field: value")
    return data


def check_recipe(data: dict[str, Any], dataclass_types, source: str) -> None:
    """Refuse unknown keys and values of the wrong type in a recipe, before TRL parses it.

    TRL takes recipe values as argparse defaults: text is converted like a flag (so
    `learning_rate: 2e-4`, which YAML reads as text, works), anything else reaches the dataclass
    unchecked. Booleans must be YAML booleans, numbers numbers (or text argparse converts).
    """
    import dataclasses
    import typing

    hints: dict[str, Any] = {}
    for cls in dataclass_types:
        try:
            resolved = typing.get_type_hints(cls)
        except Exception:  # an annotation this Python cannot evaluate: leave it to TRL
            resolved = {}
        for f in dataclasses.fields(cls):
            hints.setdefault(f.name, resolved.get(f.name, Any))
    unknown = sorted(k for k in data if k not in hints and k != "env")
    if unknown:
        raise CulturespaError(
            f"{source}: unknown key(s) {', '.join(unknown)} (not a field of the script arguments, "
            "SFTConfig or ModelConfig; `python recipes/sft.py --help` lists them)"
        )
    if "env" in data and not isinstance(data["env"], dict):
        raise invalid(f"{source}: env", data["env"], "a mapping of environment variables")
    for key, value in data.items():
        if key == "env" or value is None:
            continue
        hint = hints[key]
        if isinstance(value, str) and not _is_bool_hint(hint):
            continue  # argparse converts it with the field's type, or fails with one line
        if accepts(value, hint) is False:
            raise invalid(f"{source}: {key}", value, describe(hint))


def _is_bool_hint(hint: Any) -> bool:
    import typing

    members = typing.get_args(hint) if typing.get_origin(hint) is not None else (hint,)
    return bool in members and str not in members


def prepare_arguments(script_args, training_args, model_args) -> None:
    """Validate the parsed arguments and fill in what depends on them (model path, accumulation)."""
    if not script_args.dataset_path:
        raise CulturespaError(
            "dataset_path: required (a folder written by `culturespa build-data`)"
        )
    if not model_args.model_name_or_path:
        raise CulturespaError(
            "model_name_or_path: required ('default' selects SmolLM2-135M-Instruct)"
        )
    from culturespa.default_model import resolve_model_path

    model_args.model_name_or_path = resolve_model_path(model_args.model_name_or_path)
    # As in TRL's sft.py: the model fields of ModelConfig reach from_pretrained through SFTConfig.
    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = model_init_kwargs
    targets = model_args.lora_target_modules
    if isinstance(targets, list) and len(targets) == 1 and targets[0] == "all-linear":
        # The CLI gives a list; PEFT only expands the bare string.
        model_args.lora_target_modules = "all-linear"
    if not model_args.use_peft:
        logger.warning("use_peft is false: this trains all weights, not a LoRA adapter")
    if not training_args.assistant_only_loss:
        logger.warning(
            "assistant_only_loss is false: the loss covers prompts too, unlike the paper"
        )
    if script_args.effective_batch_size is not None:
        training_args.gradient_accumulation_steps = gradient_accumulation_for(
            script_args.effective_batch_size,
            training_args.per_device_train_batch_size,
            training_args.world_size,
        )
        logger.info(
            "gradient_accumulation_steps=%d for an effective batch of %d on %d processes",
            training_args.gradient_accumulation_steps,
            script_args.effective_batch_size,
            training_args.world_size,
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


def merge_adapter(
    adapter_dir: str | Path,
    output_dir: str | Path,
    base_model: str | None = None,
    dtype: str = "bfloat16",
) -> Path:
    """Merge a LoRA adapter into its base weights and save a plain checkpoint (for vLLM serving)."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise CulturespaError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter folder)")
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise CulturespaError(f"dtype: unknown torch dtype {dtype!r}")
    check_output_dir(output_dir, "output folder")
    base = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    # Saved into a staging folder and swapped in whole: an older checkpoint is never mixed in.
    with staging_dir(output_dir.parent if output_dir.parent.exists() else output_dir) as stage:
        build = stage / output_dir.name
        merged.save_pretrained(build)
        # The adapter folder holds the training tokenizer (with its chat template); else the base.
        source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
        AutoTokenizer.from_pretrained(source).save_pretrained(build)
        for name in (CARD_FILE, RUN_FILE):
            if (adapter_dir / name).is_file():
                shutil.copyfile(adapter_dir / name, build / f"adapter_{name}")
        replace_dir_atomic(build, output_dir)
    logger.info("merged %s into %s -> %s", adapter_dir, base, output_dir)
    return output_dir


def read_adapter_index(path: str | Path) -> tuple[str, dict[str, str]]:
    """(base model, {ISO3: adapter dir}) from a culture-specific run's adapters.json (or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / INDEX_FILE
    if not path.is_file():
        raise CulturespaError(f"{path}: no {INDEX_FILE}; train with --countries first")
    index = json.loads(path.read_text("utf-8"))
    adapters = index.get("adapters")
    if not isinstance(adapters, dict) or not adapters:
        raise CulturespaError(f"{path}: 'adapters' must map ISO-3 codes to adapter folders")
    return str(index.get("base_model", "")), {
        get_country(c).code: str(p) for c, p in adapters.items()
    }


def evaluate_culture_specific(
    index_path: str | Path,
    task: str,
    output_path: str | Path,
    model: str | None = None,
    **eval_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Evaluate each country's adapter on that country's task (`{task}_{iso3}`), one results file each.

    The adapter folders end in the country code, so `culturespa report` shows them as one row."""
    from culturespa.evaluation import run_evaluation

    base, adapters = read_adapter_index(index_path)
    base = model or base
    if not base:
        raise CulturespaError(f"{index_path}: no base_model; pass the base model")
    results = {}
    for code, adapter in adapters.items():
        logger.info("evaluating %s adapter %s on %s_%s", code, adapter, task, code.lower())
        results[code] = run_evaluation(
            model=base,
            tasks=f"{task}_{code.lower()}",
            peft=adapter,
            output_path=output_path,
            **eval_kwargs,
        )
    return results
