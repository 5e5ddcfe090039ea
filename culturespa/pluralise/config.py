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
from culturespa.inference.models import check_device
from culturespa.pluralise.ray_config import RaySection
from culturespa.run_files import VARIANTS

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
DEBIAS_WAYS: tuple[str, ...] = ("none", "permute", "calibrate")
"""The answer stage's ways of taking the listed place out of an answer (`answer.debias`)."""


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise invalid(f"config: {key}", value, "one of " + ", ".join(allowed))


def _sampling(section: str, temperature: float, top_p: float, max_new_tokens: int) -> None:
    if temperature < 0:
        raise invalid(f"config: {section}.temperature", temperature, "a number >= 0")
    if not 0 < top_p <= 1:
        raise invalid(f"config: {section}.top_p", top_p, "a number in (0, 1]")
    check_at_least(f"config: {section}.max_new_tokens", max_new_tokens, 1)


@dataclass
class ModelSection:
    """Which model answers, and how it is run."""

    name: str = field(
        metadata={
            "help": "model folder, hub id (vllm/openai), or 'default' (SmolLM2-135M-Instruct)"
        },
        default="",
    )
    backend: str = field(metadata={"help": "inference backend: hf, vllm or openai"}, default="hf")
    batch_size: int = field(
        metadata={
            "help": "hf: prompts per forward pass (SmolLM2 on 2 CPU cores: 32 scored fastest, "
            "benchmarks/README.md)"
        },
        default=32,
    )
    dtype: str = field(
        metadata={"help": "hf/vllm: auto, float32, bfloat16 or float16"}, default="auto"
    )
    device: str = field(metadata={"help": "hf: auto, cpu, cuda, cuda:1, mps"}, default="auto")
    num_threads: int = field(
        metadata={
            "help": "hf: CPU threads for torch (0: torch's default; 1 helps on busy machines)"
        },
        default=0,
    )
    tensor_parallel_size: int = field(
        metadata={"help": "vllm: GPUs one model is split over"}, default=1
    )
    gpu_memory_utilization: float = field(
        metadata={"help": "vllm: share of GPU memory to use"}, default=0.9
    )
    max_model_len: int = field(metadata={"help": "vllm: context length to reserve"}, default=4096)
    enforce_eager: bool = field(
        metadata={"help": "vllm: no torch.compile or graph capture (starts ~20 s sooner on a CPU)"},
        default=False,
    )
    api_base: str = field(
        metadata={"help": "openai: base URL of the server"}, default="http://127.0.0.1:8000/v1"
    )
    api_key_env: str = field(
        metadata={"help": "openai: environment variable holding the API key"},
        default="OPENAI_API_KEY",
    )
    concurrency: int = field(metadata={"help": "openai: requests in flight"}, default=16)
    tokenizer: str = field(
        metadata={
            "help": "openai: folder or hub id of the served model's tokenizer; when set, options "
            "are scored exactly (prompt log-probabilities echoed by /completions, as vllm serve "
            "does) instead of from the first reply token's top log-probabilities"
        },
        default="",
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: model.")
        if not self.name:
            raise CulturespaError("config: model.name is missing (a model folder or 'default')")
        _one_of("model.backend", self.backend, ("hf", "vllm", "openai"))
        _one_of("model.dtype", self.dtype, DTYPES)
        check_device(self.device, "config: model.device")
        check_at_least("config: model.batch_size", self.batch_size, 1)
        check_at_least("config: model.num_threads", self.num_threads, 0)
        check_at_least("config: model.tensor_parallel_size", self.tensor_parallel_size, 1)
        check_at_least("config: model.max_model_len", self.max_model_len, 1)
        check_at_least("config: model.concurrency", self.concurrency, 1)
        if not 0 < self.gpu_memory_utilization <= 1:
            raise invalid(
                "config: model.gpu_memory_utilization",
                self.gpu_memory_utilization,
                "a share in (0, 1]",
            )

    def backend_options(self) -> dict:
        if self.backend == "hf":
            return {
                "batch_size": self.batch_size,
                "dtype": self.dtype,
                "device": self.device,
                "num_threads": self.num_threads,
            }
        if self.backend == "vllm":
            return {
                "tensor_parallel_size": self.tensor_parallel_size,
                "dtype": self.dtype,
                "gpu_memory_utilization": self.gpu_memory_utilization,
                "max_model_len": self.max_model_len,
                "enforce_eager": self.enforce_eager,
            }
        return {
            "api_base": self.api_base,
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "tokenizer": self.tokenizer or None,
        }


@dataclass
class GenerateSection:
    """Stage 1: self-instruct question generation (skipped when `questions_file` is set)."""

    questions_per_topic: int = field(
        metadata={"help": "new questions per WVS topic (the paper: 1000)"}, default=1000
    )
    requests_per_round: int = field(
        metadata={"help": "requests per topic in one batched round"}, default=16
    )
    n_examples: int = field(metadata={"help": "example questions shown per request"}, default=5)
    max_wvs_examples: int = field(
        metadata={"help": "at most this many of them are real WVS items"}, default=3
    )
    temperature: float = field(metadata={"help": "sampling temperature"}, default=0.9)
    top_p: float = field(metadata={"help": "nucleus sampling top_p"}, default=0.95)
    max_new_tokens: int = field(metadata={"help": "reply length limit"}, default=256)
    max_attempts_per_question: int = field(
        metadata={"help": "stop a topic after N x this many requests"}, default=5
    )
    response_prefix: str = field(
        metadata={
            "help": "start of the reply written for the model ('' for none; the openai backend "
            "needs a server that continues an assistant message, e.g. vllm serve)"
        },
        default='{"question": "',
    )
    stop: list[str] = field(
        metadata={"help": "a reply ends after the first of these strings"},
        default_factory=lambda: ["}"],
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: generate.")
        if not all(self.stop):
            raise invalid("config: generate.stop", self.stop, "a list of non-empty strings")
        check_at_least("config: generate.questions_per_topic", self.questions_per_topic, 1)
        check_at_least("config: generate.requests_per_round", self.requests_per_round, 1)
        check_at_least("config: generate.n_examples", self.n_examples, 1)
        if not 1 <= self.max_wvs_examples <= self.n_examples:
            raise invalid(
                "config: generate.max_wvs_examples",
                self.max_wvs_examples,
                f"an integer in 1..n_examples ({self.n_examples})",
            )
        _sampling("generate", self.temperature, self.top_p, self.max_new_tokens)
        check_at_least(
            "config: generate.max_attempts_per_question", self.max_attempts_per_question, 1
        )


@dataclass
class FilterSection:
    """Stage 2: filtering."""

    min_options: int = field(metadata={"help": "fewest options kept"}, default=2)
    max_options: int = field(metadata={"help": "most options kept"}, default=11)
    per_topic: int | None = field(
        metadata={
            "help": "after the rules, keep N (>= 1) of the kept questions per topic, a seeded "
            "draw (stratified subset; all of a topic with fewer); none keeps all"
        },
        default=None,
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: filter.")
        if self.per_topic is not None:
            check_at_least("config: filter.per_topic", self.per_topic, 1)
        if not 2 <= self.min_options <= 11:
            raise invalid("config: filter.min_options", self.min_options, "an integer in 2..11")
        if not self.min_options <= self.max_options <= 11:
            raise invalid(
                "config: filter.max_options",
                self.max_options,
                f"an integer in min_options..11 ({self.min_options}..11)",
            )


@dataclass
class AnswerSection:
    """Stage 3: answering."""

    method: str = field(
        metadata={"help": "loglik (option log-likelihood, default) or sample (the paper's)"},
        default="loglik",
    )
    debias: str = field(
        metadata={
            "help": "loglik: none (the paper's rule: the answer as listed), permute (every "
            "option in every listed place: the k cyclic orders numbered 1..k by place, pooled "
            "by geometric mean; k x the prompts) or calibrate (divided by the distribution of "
            "a content-free question with the same numbers, scored once per system prompt)"
        },
        default="none",
    )
    cross_culture_thinking: bool = field(
        metadata={"help": "also answer with cross-culture thinking (for the CCT variant)"},
        default=True,
    )
    chunk_size: int = field(
        metadata={"help": "prompts per backend call and per resumable unit"}, default=256
    )
    temperature: float = field(
        metadata={"help": "sample: temperature (the paper: 0.6)"}, default=0.6
    )
    top_p: float = field(metadata={"help": "sample: top_p (the paper: 0.9)"}, default=0.9)
    max_new_tokens: int = field(
        metadata={"help": "sample: reply length limit (the paper: 256)"}, default=32
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: answer.")
        _one_of("answer.method", self.method, ("loglik", "sample"))
        _one_of("answer.debias", self.debias, DEBIAS_WAYS)
        if self.debias != "none" and self.method != "loglik":
            raise invalid(
                "config: answer.debias", self.debias, "none: debiased answers need method loglik"
            )
        check_at_least("config: answer.chunk_size", self.chunk_size, 1)
        _sampling("answer", self.temperature, self.top_p, self.max_new_tokens)


@dataclass
class BuildSection:
    """Stage 5: training sets."""

    variants: list[str] = field(
        metadata={"help": "culture_joint, cross_culture_thinking_joint, culture_specific"},
        default_factory=lambda: list(VARIANTS),
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: build.")
        for variant in self.variants:
            _one_of("build.variants", variant, VARIANTS)


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
