"""The loop's YAML config, the settings record that guards a run folder, and the build-data
config derived from it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.fields import check_field_types, invalid, read_yaml_mapping
from culturespa.loop.layout import STAGES, Layout
from culturespa.run_files import BASE_MODEL_RUN, EVAL_FOLDER
from culturespa.survey.countries import DEMO_COUNTRIES

MODEL_KINDS: tuple[str, ...] = ("base", "joint", "specific")
"""What the loop evaluates: the model itself, its culture-joint adapter, its culture-specific
adapters (one per country); the report's rows carry the same kinds (`Row.adapter_kind`)."""

RUN_SHAPE_FIELDS: tuple[str, ...] = (
    "output_dir", "stages", "models", "in_process", "threads", "report_folder",
    "base_eval_folder", "summary",
)  # fmt: skip
"""Fields that say what runs where, not what the results are: left out of the settings record."""


@dataclass
class LoopConfig:
    """The loop's YAML config: what to run, on what, and where."""

    output_dir: str = field(default="", metadata={"help": "run folder of every stage's output"})
    stages: list[str] = field(
        default_factory=lambda: list(STAGES),
        metadata={"help": f"the stages to run, of {', '.join(STAGES)} (--stages picks among them)"},
    )
    models: list[str] = field(
        default_factory=lambda: list(MODEL_KINDS),
        metadata={
            "help": "what is trained, evaluated and reported: base (the model), joint (its "
            "culture-joint adapter), specific (one adapter per country)"
        },
    )
    data_config: str = field(
        default="",
        metadata={
            "help": "a `culturespa build-data` config; the loop sets its output_dir, model.name, "
            "survey, countries, seed and filter.per_topic (needed by the data stage)"
        },
    )
    joint_recipe: str = field(
        default="", metadata={"help": "`culturespa train` recipe, joint (needed to train it)"}
    )
    specific_recipe: str = field(
        default="",
        metadata={
            "help": "`culturespa train` recipe, one adapter per country (needed to train them)"
        },
    )
    model: str = field(
        default="default",
        metadata={
            "help": "model folder, HF id, 'default' (SmolLM2-135M-Instruct) or 'tiny' (the tiny "
            "random test model, built into the run folder first)"
        },
    )
    survey: str | None = field(
        default=None,
        metadata={
            "help": "a survey folder from `culturespa survey build` (none: the shipped survey); "
            "passed on to the data config (`survey:`), the evaluations (`--survey`) and read by "
            "the report"
        },
    )
    countries: str | list[str] = field(
        default_factory=lambda: list(DEMO_COUNTRIES),
        metadata={
            "help": "ISO-3 codes, 'paper' or 'all' (every country of the survey); data, training "
            "and evaluation"
        },
    )
    seed: int = field(default=42, metadata={"help": "seed of every stage"})
    per_topic: int | None = field(
        default=None,
        metadata={"help": "kept questions per topic after the filter (stratified subset)"},
    )
    eval_task: str | list[str] = field(
        default="wvs_culture_aware",
        metadata={
            "help": "task group(s), each a way of asking and a template (wvs_culture_aware, "
            "wvs_rev_culture_unaware); the country is added"
        },
    )
    eval_backend: str = field(
        default="culturespa-hf", metadata={"help": "culturespa-hf or hf (lm-eval model type)"}
    )
    eval_batch_size: int | str = field(
        default=16, metadata={"help": "evaluation batch size or 'auto'"}
    )
    eval_limit: int | None = field(
        default=None, metadata={"help": "WVS items per country (None: all, up to 259)"}
    )
    device: str | None = field(
        default="cpu", metadata={"help": "evaluation device (null: cuda when present)"}
    )
    in_process: bool = field(
        default=False,
        metadata={
            "help": "run every stage's command in the loop's own process (one Python start, the "
            "CPU threads set by `threads`) instead of a child process each (its own peak memory)"
        },
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads of in-process stages (null: the cores not busy now)"},
    )
    base_eval_folder: str = field(
        default=f"{EVAL_FOLDER}/{BASE_MODEL_RUN}",
        metadata={"help": "the base model's lm-eval results, inside the run folder"},
    )
    report_folder: str = field(
        default="report", metadata={"help": "the report, inside the run folder ('.': the folder)"}
    )
    summary: str = field(
        default="loop",
        metadata={
            "help": "loop: summary.md and summary.json (base, joint and specific rows, training "
            "pairs, costs) and the loss curves; report: the report's table printed (the demo)"
        },
    )

    def __post_init__(self) -> None:
        from culturespa.inference.models import check_device, check_device_present
        from culturespa.pluralise.config import use_config_survey
        from culturespa.survey.countries import parse_countries

        check_field_types(self, "config: ")
        if not self.output_dir:
            raise CulturespaError("config: output_dir is missing")
        self._check_choices()
        self._resolve_recipes()
        if isinstance(self.countries, list) and not self.countries:
            raise invalid("config: countries", self.countries, "ISO-3 codes")
        self.survey = use_config_survey(self.survey)
        self.countries = list(parse_countries(self.countries))
        for key in ("per_topic", "eval_limit", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise invalid(f"config: {key}", value, "an integer >= 1 or null")
        if self.eval_batch_size != "auto" and (
            isinstance(self.eval_batch_size, str) or self.eval_batch_size < 1
        ):
            raise invalid(
                "config: eval_batch_size", self.eval_batch_size, "an integer >= 1 or auto"
            )
        if not 0 <= self.seed < 2**32:
            raise invalid("config: seed", self.seed, "an integer 0 <= seed < 2**32")
        # The loop evaluates on this machine: a CUDA device must be one its torch sees.
        check_device_present(check_device(self.device, "config: device"), "config: device")
        self._check_tasks()
        if self.eval_backend not in ("culturespa-hf", "hf"):
            raise invalid("config: eval_backend", self.eval_backend, "culturespa-hf or hf")

    def _check_choices(self) -> None:
        for key, known in (("stages", STAGES), ("models", MODEL_KINDS)):
            values = getattr(self, key)
            if not values or any(v not in known for v in values):
                raise invalid(f"config: {key}", values, f"a list of {', '.join(known)}")
        if self.summary not in ("loop", "report"):
            raise invalid("config: summary", self.summary, "loop or report")

    def _resolve_recipes(self) -> None:
        """The configs the chosen stages read, by path or packaged name; missing ones are errors."""
        from culturespa.packaged import recipe_file

        needed = {
            "data_config": "data" in self.stages,
            "joint_recipe": "train" in self.stages and "joint" in self.models,
            "specific_recipe": "train" in self.stages and "specific" in self.models,
        }
        for key, kind in (("data_config", "data"), ("joint_recipe", "train"),
                          ("specific_recipe", "train")):  # fmt: skip
            if not getattr(self, key):
                if needed[key]:
                    raise CulturespaError(f"config: {key} is missing")
                continue
            setattr(self, key, str(recipe_file(getattr(self, key), kind, f"config: {key}")))

    def _check_tasks(self) -> None:
        from culturespa.prompts.task_names import parse_task_name

        groups = [self.eval_task] if isinstance(self.eval_task, str) else self.eval_task
        for group in groups or [""]:
            task = parse_task_name(group)
            if task is None or task.country is not None:
                raise invalid("config: eval_task", group, "a task group such as wvs_culture_aware")

    @property
    def out(self) -> Path:
        return Path(self.output_dir)

    @property
    def eval_groups(self) -> list[str]:
        """The task groups to evaluate, in the config's order."""
        return [self.eval_task] if isinstance(self.eval_task, str) else list(self.eval_task)


def load_loop_config(path: str | Path, overrides: dict[str, Any]) -> LoopConfig:
    """Read the YAML config; flags (`overrides`, None: not given) win; unknown keys are errors."""
    from culturespa.packaged import recipe_file

    path = recipe_file(path, "loop", "--config")
    data = read_yaml_mapping(path, "--config", empty_ok=True)
    known = {f.name for f in dataclasses.fields(LoopConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CulturespaError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return LoopConfig(**data)
    except CulturespaError as exc:
        raise CulturespaError(f"{path}: {exc}") from None


def settings_record(config: LoopConfig) -> dict[str, Any]:
    """What fixes the results: the loop's settings and the content of the files it reads."""

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    record = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_SHAPE_FIELDS}
    for key in ("data_config", "joint_recipe", "specific_recipe"):
        if getattr(config, key):
            record[f"{key}_sha256"] = digest(getattr(config, key))
    if config.survey:  # recorded only for a survey folder: the shipped survey's runs resume
        from culturespa.survey.folder import survey_content_sha256

        record["survey_sha256"] = survey_content_sha256(config.survey)[:16]
    return record


def check_manifest(layout: Layout, config: LoopConfig, write: bool = True) -> None:
    """Refuse a run folder whose results were made with other settings; record the settings."""
    from culturespa.atomic import write_json_atomic

    current = json.loads(json.dumps(settings_record(config)))
    if layout.manifest.is_file():
        saved = json.loads(layout.manifest.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        holds_results = any(
            p.exists() for p in (layout.data, layout.joint, layout.specific, layout.eval)
        )
        if changed and holds_results:
            raise CulturespaError(
                f"{layout.out} holds a loop run made with other settings ({', '.join(changed)}); "
                "use another --output-dir or delete that folder"
            )
    if write:
        write_json_atomic(layout.manifest, current)


def derived_data_config(config: LoopConfig, layout: Layout) -> dict[str, Any]:
    """The build-data config the loop runs: `data_config` with the loop's model, countries, seed,
    output folder and subset; checked with build-data's own parser."""
    from culturespa.pluralise.config import config_from_dict

    data = read_yaml_mapping(config.data_config, "config: data_config", empty_ok=True)
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    data["model"] = {**model, "name": layout.model_path(config.model)}
    data["output_dir"] = str(layout.data)
    data["countries"] = list(config.countries)
    data["survey"] = config.survey  # the loop's survey, for the personas and prompts
    data["seed"] = config.seed
    data["filter"] = {**(data.get("filter") or {}), "per_topic": config.per_topic}
    try:
        config_from_dict(data)
    except CulturespaError as exc:
        raise CulturespaError(f"{config.data_config}: {exc}") from None
    return data
