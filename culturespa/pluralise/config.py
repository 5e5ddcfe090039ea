"""The YAML config of `culturespa build-data`: one file for the whole flow.

Every section is a dataclass whose fields carry their help text; unknown keys, missing required
values, values of the wrong type (`cross_culture_thinking: "no"` is text, not a boolean) and impossible values are
errors that name the key, the value and what is allowed, raised before anything is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.fields import check_at_least, check_field_types, invalid, read_yaml_mapping, show
from culturespa.pluralise.ray_config import RaySection
from culturespa.pluralise.sections import (
    AnswerSection,
    BuildSection,
    FilterSection,
    GenerateSection,
    ModelSection,
)

_SECTIONS = {
    "model": ModelSection,
    "generate": GenerateSection,
    "filter": FilterSection,
    "answer": AnswerSection,
    "build": BuildSection,
    "ray": RaySection,
}
_OPTIONAL_SECTIONS = {"ray"}
"""Sections that are off unless the config has them (their table row says what they switch on)."""


@dataclass
class DataConfig:
    """The whole flow: model, output folder, countries, and one section per stage."""

    model: ModelSection = field(metadata={"help": "the model and its backend"}, default=None)
    output_dir: str = field(metadata={"help": "run folder for every stage's output"}, default="")
    survey: str | None = field(
        metadata={
            "help": "a survey folder from `culturespa survey build` (none: the shipped survey); "
            "the countries, personas and cross-culture prompts come from it"
        },
        default=None,
    )
    countries: str | list[str] = field(
        metadata={"help": "ISO-3 codes, 'paper' (18) or 'all' (every country of the survey)"},
        default="paper",
    )
    topics: str | list[str] = field(metadata={"help": "WVS topic names, or 'all'"}, default="all")
    seed: int = field(metadata={"help": "seed of example choice and sampling"}, default=42)
    questions_file: str | None = field(
        metadata={
            "help": "a questions JSONL (topic, question, options) to use instead of generating; "
            "package:released (the paper's 13,000) or package:sample (42 of them) name the "
            "packaged files"
        },
        default=None,
    )
    questions_limit_per_topic: int | None = field(
        metadata={
            "help": "use only the first N (>= 1) questions per topic of questions_file, before "
            "the filter (small runs; filter.per_topic draws a subset after it)"
        },
        default=None,
    )
    generate: GenerateSection = field(metadata={"help": "stage 1"}, default_factory=GenerateSection)
    filter: FilterSection = field(metadata={"help": "stage 2"}, default_factory=FilterSection)
    answer: AnswerSection = field(metadata={"help": "stage 3"}, default_factory=AnswerSection)
    build: BuildSection = field(metadata={"help": "stage 5"}, default_factory=BuildSection)
    ray: RaySection | None = field(
        metadata={
            "help": "run the generate and answer stages on Ray (`ray: {}` for a local Ray with "
            "the defaults below); none: in this process"
        },
        default=None,
    )

    def __post_init__(self) -> None:
        from culturespa.survey.countries import parse_countries
        from culturespa.survey.items import TOPIC_NAMES

        if self.model is None:
            raise CulturespaError("config: the model section is missing (model: {name: ...})")
        check_field_types(self, "config: ")
        if not self.output_dir:
            raise CulturespaError("config: output_dir is missing")
        if not 0 <= self.seed < 2**32:
            raise invalid("config: seed", self.seed, "an integer 0 <= seed < 2**32")
        if isinstance(self.countries, list) and not self.countries:
            raise invalid("config: countries", self.countries, "ISO-3 codes, 'paper' or 'all'")
        self.survey = use_config_survey(self.survey)
        self.countries = list(parse_countries(self.countries))
        if self.topics == "all":
            self.topics = list(TOPIC_NAMES)
        elif isinstance(self.topics, str):
            self.topics = [self.topics]
        if not self.topics:
            raise invalid("config: topics", self.topics, "WVS topic names or 'all'")
        unknown = [t for t in self.topics if t not in TOPIC_NAMES]
        if unknown:
            raise CulturespaError(
                f"config: unknown topic(s) {show(unknown)}; topics: 'all' or of {list(TOPIC_NAMES)}"
            )
        if self.questions_limit_per_topic is not None:
            check_at_least("config: questions_limit_per_topic", self.questions_limit_per_topic, 1)
        if self.questions_file is not None:
            path = self.questions_path
            if not path.is_file():
                what = "is a folder" if path.is_dir() else "does not exist"
                raise CulturespaError(
                    f"config: questions_file {self.questions_file} {what}; expected a JSONL file"
                )
        if (
            "cross_culture_thinking_joint" in self.build.variants
            and not self.answer.cross_culture_thinking
        ):
            raise CulturespaError(
                "config: build variant cross_culture_thinking_joint needs answer.cross_culture_thinking: true"
            )
        openai_first_token = self.model.backend == "openai" and not self.model.tokenizer
        if self.answer.debias != "none" and openai_first_token:
            raise CulturespaError(
                f"config: answer.debias: {self.answer.debias} with model.backend openai needs "
                "model.tokenizer (exact option scores); the first reply token's top "
                "log-probabilities miss options, which permuted orders and calibration cannot take"
            )

    @property
    def questions_path(self) -> Path | None:
        """`questions_file` as a path: `package:released` and `package:sample` name the
        packaged questions (culturespa.packaged), anything else is a path."""
        from culturespa.packaged import data_file

        if self.questions_file is None:
            return None
        return data_file(self.questions_file, "config: questions_file")

    @property
    def out(self) -> Path:
        return Path(self.output_dir)


def use_config_survey(survey: str | None) -> str | None:
    """Make a config's survey folder the one in use, checked; its absolute path (None: the
    shipped survey). The data builder's and the loop's `survey:` key."""
    from culturespa.survey.folder import use_survey_folder

    if survey is not None and not survey.strip():
        raise invalid("config: survey", survey, "a survey folder or null")
    try:
        use_survey_folder(survey)
    except CulturespaError as exc:
        raise CulturespaError(f"config: survey: {exc}") from None
    return str(Path(survey).resolve()) if survey is not None else None


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None or value == "":
        return "(none)" if value is None else '`""`'
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def config_reference() -> str:
    """Every config key with its default and help, as Markdown (`culturespa build-data --keys`)."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    sections = []
    for f in dataclasses.fields(DataConfig):
        cls = _SECTIONS.get(f.name)
        if (
            cls is None or f.name in _OPTIONAL_SECTIONS
        ):  # a key, or a section that is off unless given
            default = "required" if f.name == "output_dir" else _default_text(f)
            lines.append(f"| `{f.name}` | {default} | {f.metadata['help']} |")
        if cls is not None:
            sections.append((f.name, cls))
    for name, cls in sections:
        for f in dataclasses.fields(cls):
            default = "required" if (name, f.name) == ("model", "name") else _default_text(f)
            help_text = f.metadata["help"].replace("|", "\\|")
            lines.append(f"| `{name}.{f.name}` | {default} | {help_text} |")
    return "\n".join(lines) + "\n"


def _section(cls, values: Any, where: str):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise CulturespaError(f"config: {where} must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CulturespaError(
            f"config: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return values


def config_from_dict(data: dict, overrides: dict | None = None) -> DataConfig:
    """Build a DataConfig from a mapping (unknown keys raise); `overrides` win over the file."""
    data = dict(_section(DataConfig, data, "top level"))
    overrides = dict(overrides or {})
    model_name = overrides.pop("model_name", None)
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    if model_name:
        model = data.get("model")
        data["model"] = {**model, "name": model_name} if isinstance(model, dict) else model_name
    if "model" not in data or data["model"] in (None, ""):
        raise CulturespaError("config: model is missing (model: {name: <folder or 'default'>})")
    if isinstance(data["model"], str):
        data["model"] = {"name": data["model"]}
    kwargs = {}
    for key, value in data.items():
        cls = _SECTIONS.get(key)
        if cls is not None:
            kwargs[key] = cls(**_section(cls, value, key))
        else:
            kwargs[key] = value
    return DataConfig(**kwargs)


def load_config(path: str | Path, overrides: dict | None = None) -> DataConfig:
    """Read a YAML config file."""
    data = read_yaml_mapping(path, "config file", empty_ok=True)
    try:
        return config_from_dict(data, overrides)
    except CulturespaError as exc:
        raise CulturespaError(f"{path}: {exc}") from exc
