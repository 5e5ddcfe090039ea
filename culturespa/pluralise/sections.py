"""The sections of the data builder's YAML config (`culturespa build-data`), one dataclass per
stage: model, generate, filter, answer, build. Each field carries its help text; `__post_init__`
checks types and values and names the key in its one-line error. The whole config (`DataConfig`)
and its reading are in `culturespa.pluralise.config`; the ray section in `ray_config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from culturespa.errors import CulturespaError
from culturespa.fields import check_at_least, check_field_types, invalid
from culturespa.inference.models import check_device
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
            "does) instead of from the first reply token's top log-probabilities; answer.debias "
            "needs it"
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
            "a content-free question with the same numbers, scored once per system prompt); "
            "backends hf, vllm, and openai with model.tokenizer"
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
