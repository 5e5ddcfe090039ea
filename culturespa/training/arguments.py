"""`culturespa train`'s own arguments, its recipe checks, and what the parsed arguments imply."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.fields import accepts, check_field_types, describe, invalid, read_yaml_mapping
from culturespa.inference.chat_templates import SHIPPED_TEMPLATES
from culturespa.inference.models import check_remote_code, resolve_model

logger = logging.getLogger(__name__)


@dataclass
class CultureSPAScriptArguments:
    """Arguments of `culturespa train` (`recipes/sft.py`) that are not fields of TRL's SFTConfig
    or ModelConfig."""

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
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Train into an output_dir that culturespa did not make (a non-empty folder "
            "without its .culturespa-manifest.json). Only the files a trainer and culturespa "
            "write are replaced there; the others are left as they are."
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


def check_launch(env: Mapping[str, str], world_size: int, use_cpu: bool) -> None:
    """Refuse the launches that accelerate runs other than asked, without saying so.

    - `accelerate launch` started N processes (WORLD_SIZE) that formed no process group (world
      size 1): on a machine without a GPU and without `use_cpu: true`, each process trains alone
      on all the data and they all write the same output folder.
    - FSDP asked for (ACCELERATE_USE_FSDP) on CPU processes: accelerate enables FSDP for
      accelerators only; on CPU it would run plain DDP.
    """
    launched = int(env.get("WORLD_SIZE", "1") or 1)
    if launched != world_size:
        raise CulturespaError(
            f"launched as {launched} processes (WORLD_SIZE={launched}) that formed no process "
            f"group (world size {world_size}): each would train alone and write the same output "
            "folder; on a machine without a GPU set use_cpu: true (recipes/accelerate/multi_cpu.yaml)"
        )
    if use_cpu and env.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise CulturespaError(
            "FSDP on CPU processes: accelerate enables FSDP only on GPUs and other accelerators and "
            "would run plain DDP instead; on a CPU use recipes/accelerate/multi_cpu.yaml (DDP over gloo)"
        )


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a training recipe; a missing, unreadable or malformed file is an error."""
    return read_yaml_mapping(path, "--config")


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
            "SFTConfig or ModelConfig; `culturespa train --help` lists them)"
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

    check_launch(os.environ, training_args.world_size, training_args.use_cpu)
    model_args.model_name_or_path = resolve_model(model_args.model_name_or_path)
    check_remote_code(
        model_args.model_name_or_path, bool(training_args.trust_remote_code), "model_name_or_path"
    )
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


def _finite(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_hyperparameters(training_args, model_args) -> None:
    """Refuse the values that train nothing or train on nonsense, before any model loads: a
    learning rate that is not a finite number > 0, no epoch and no step, a LoRA rank below 1,
    a seed outside 0..2**32-1, batch sizes below 1."""
    lr = training_args.learning_rate
    if not _finite(lr) or lr <= 0:
        raise invalid("learning_rate", lr, "a finite number > 0")
    steps, epochs = training_args.max_steps, training_args.num_train_epochs
    if steps != -1 and steps < 1:
        raise invalid("max_steps", steps, "an integer >= 1, or -1 to train num_train_epochs")
    if steps == -1 and (not _finite(epochs) or epochs <= 0):
        raise invalid("num_train_epochs", epochs, "a finite number > 0 (or max_steps >= 1)")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if getattr(training_args, key) < 1:
            raise invalid(key, getattr(training_args, key), "an integer >= 1")
    for key in ("seed", "data_seed"):
        value = getattr(training_args, key, None)
        if value is not None and not 0 <= value < 2**32:
            raise invalid(key, value, "an integer 0 <= seed < 2**32")
    ratio = getattr(training_args, "warmup_ratio", 0.0)
    if not _finite(ratio) or not 0 <= ratio <= 1:
        raise invalid("warmup_ratio", ratio, "a number in 0..1")
    if not _finite(training_args.max_grad_norm) or training_args.max_grad_norm < 0:
        raise invalid("max_grad_norm", training_args.max_grad_norm, "a finite number >= 0")
    if model_args.use_peft:
        if model_args.lora_r < 1:
            raise invalid("lora_r", model_args.lora_r, "an integer >= 1")
        if not _finite(model_args.lora_alpha) or model_args.lora_alpha <= 0:
            raise invalid("lora_alpha", model_args.lora_alpha, "a finite number > 0")
        if not _finite(model_args.lora_dropout) or not 0 <= model_args.lora_dropout < 1:
            raise invalid("lora_dropout", model_args.lora_dropout, "a number in 0..1 (1 excluded)")


def split_config(argv: list[str], parser) -> tuple[str | None, list[str]]:
    """(the --config value, the other arguments); a malformed --config is argparse's exit 2."""
    if any(a.startswith("--config=") for a in argv):
        parser.error("write --config PATH, as TRL's scripts take it (not --config=PATH)")
    if argv.count("--config") > 1:
        parser.error("--config given more than once")
    if "--config" not in argv:
        return None, list(argv)
    index = argv.index("--config")
    if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
        parser.error("--config needs a path")
    return argv[index + 1], argv[:index] + argv[index + 2 :]


def apply_recipe(recipe: dict[str, Any], parser) -> None:
    """What TRL's `parse_args_and_config` does with a recipe read once: its `env` section goes
    to the environment, its values become the parser's defaults (flags still override them)."""
    for key, value in (recipe.get("env") or {}).items():
        os.environ[key] = str(value)
    parser.set_defaults_with_config(**{k: v for k, v in recipe.items() if k != "env"})


def parse_recipe_args(argv: list[str], parser):
    """(script args, SFTConfig, ModelConfig, the recipe file or None); every problem is a
    CulturespaError or, for a flag, argparse's exit 2 with one line.

    The --config value is read from the command line once, resolved (a user's file, or a
    packaged recipe by path or name: `recipes/tiny_cpu_smoke.yaml`, `tiny_cpu_smoke`), read
    and checked (missing or malformed file, unknown keys, values of the wrong type) once; its
    values become the parser's defaults and the flags are parsed over them. TRL's and
    transformers' own checks (ValueError) become one-line errors too.
    """
    from culturespa.packaged import recipe_file

    spec, flags = split_config(list(argv), parser)
    path = None
    if spec is not None:
        path = recipe_file(spec, "", "--config")
        recipe = read_recipe(path)
        check_recipe(recipe, parser.dataclass_types, spec)
        apply_recipe(recipe, parser)
    try:
        script_args, training_args, model_args = parser.parse_args_into_dataclasses(flags)
    except ValueError as exc:  # TRL and transformers check their fields with ValueError
        raise CulturespaError(" ".join(str(exc).split())) from None
    check_hyperparameters(training_args, model_args)
    return script_args, training_args, model_args, path
