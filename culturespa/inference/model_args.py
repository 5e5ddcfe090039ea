"""lm-eval model arguments: parsed and typed once, checked, built per backend."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

BACKENDS: tuple[str, ...] = (
    "hf",
    "vllm",
    "local-completions",
    "local-chat-completions",
    "culturespa-hf",
)
WEIGHTS_BACKENDS: tuple[str, ...] = ("hf", "vllm", "culturespa-hf")
"""Backends that load weights (a model folder or hub id, an adapter); the others call an API."""
_ADAPTER_ARG = {"hf": "peft", "vllm": "lora_local_path", "culturespa-hf": "peft"}
FROM_PRETRAINED_ARGS: tuple[str, ...] = (
    "attn_implementation",
    "low_cpu_mem_usage",
    "device_map",
    "load_in_8bit",
    "load_in_4bit",
    "bnb_4bit_compute_dtype",
    "bnb_4bit_quant_type",
    "bnb_4bit_use_double_quant",
    "quantization_config",
    "cache_dir",
    "local_files_only",
    "token",
    "use_safetensors",
    "torch_dtype",
)
"""Keys lm-eval's HFLM passes on to transformers' from_pretrained (its **kwargs)."""
POSITIVE_SIZE_ARGS: tuple[str, ...] = (
    "max_length",
    "max_batch_size",
    "max_gen_toks",
    "max_model_len",
    "tensor_parallel_size",
    "data_parallel_size",
)
"""Model arguments that are sizes: integers >= 1."""


def parse_model_args(model_args: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """'k=v,k2=v2' or a dict -> dict, values typed as lm-eval types them.

    The one parser of model arguments (`culturespa eval --model-args`, the `model_args` of a
    results file): values go through lm-eval's `handle_arg_string`, so "false" is the boolean
    False, "1" the integer 1, "none" None, and a quoted value stays text. `trust_remote_code`
    must come out a real boolean: the text "false" is truthy and would run the model folder's code.
    """
    if model_args is None:
        return {}
    if isinstance(model_args, Mapping):
        parsed = dict(model_args)
    else:
        from lm_eval.utils import handle_arg_string

        parsed = {}
        for part in model_args.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise CulturespaError(f"model argument {part!r} is not key=value")
            parsed[key.strip()] = handle_arg_string(value)
    trust = parsed.get("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise CulturespaError(f"model argument trust_remote_code={trust!r}: expected true or false")
    return parsed


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_model_source(model: str, model_args: Mapping[str, Any]) -> None:
    """A local model folder must exist and hold a checkpoint (config.json); anything that is not
    shaped like a hub id ('name' or 'org/name') counts as a local folder."""
    path = Path(model).expanduser()
    if "gguf_file" in model_args:
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            what = "is empty" if not any(path.iterdir()) else "holds no config.json"
            raise CulturespaError(f"model folder {model} {what}; expected a model checkpoint")
    elif path.exists():
        raise CulturespaError(f"model {model} is a file; expected a model folder or a hub id")
    elif not _HUB_ID.fullmatch(model):
        raise CulturespaError(f"model folder {model} does not exist")


def build_model_args(
    model: str,
    backend: str,
    model_args: Mapping[str, Any] | str | None = None,
    peft: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """lm-eval model arguments for a backend: weights path or API model name, adapter, seed.

    `model` is passed on as given: a name the user typed is resolved (`resolve_model`) where it
    enters, once (`culturespa.evaluation.run.evaluate_seeds`), after these arguments are checked."""
    if backend not in BACKENDS:
        raise CulturespaError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    extra = parse_model_args(model_args)
    check_extra_model_args(backend, extra, peft)  # before the model is fetched or loaded
    adapter_key = _ADAPTER_ARG.get(backend)
    args: dict[str, Any] = {}
    if backend in WEIGHTS_BACKENDS:
        args["pretrained"] = model
    else:
        args["model"] = model
    if peft:
        if adapter_key is None:
            raise CulturespaError(
                f"an adapter (--peft) needs weights: use hf or vllm, not {backend}"
            )
        args[adapter_key] = peft
    if backend == "vllm" and seed is not None:
        args["seed"] = seed
    args.update(extra)
    return args


def _vllm_engine_args() -> set[str] | None:
    """The fields of vLLM's `EngineArgs` (what lm-eval's vllm model passes on to `vllm.LLM`)."""
    import dataclasses

    try:
        from vllm.engine.arg_utils import EngineArgs
    except Exception:
        return None
    return {f.name for f in dataclasses.fields(EngineArgs)}


def accepted_model_args(backend: str) -> set[str] | None:
    """The keyword arguments lm-eval's model class of `backend` takes (None: any, or the class
    cannot be imported here, e.g. vLLM without vllm installed)."""
    import inspect

    try:
        if backend == "culturespa-hf":
            import culturespa.inference.lm_eval_model  # noqa: F401  (registers the backend)
        from lm_eval.api.registry import get_model

        cls = get_model(backend)
    except Exception:  # an optional backend that is not installed: lm-eval says so at load
        return None
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if klass.__name__ == "HFLM":
            return (names | set(FROM_PRETRAINED_ARGS)) - {"self"}
        if klass.__name__ == "VLLM":  # its **kwargs go to vLLM's engine, not to a base class
            engine_args = _vllm_engine_args()
            return None if engine_args is None else (names | engine_args) - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params) or klass is object:
            return names - {"self"}
    return None


def check_extra_model_args(backend: str, extra: Mapping[str, Any], peft: str | None) -> None:
    """The user's --model-args on top of --model and --peft: naming the model (or the adapter)
    a second time is a conflict; then `check_model_args`."""
    adapter_key = _ADAPTER_ARG.get(backend)
    for key in ("pretrained", "model", adapter_key if peft else None):
        if key in extra:
            flag = "--peft" if key == adapter_key else "--model"
            raise CulturespaError(
                f"--model-args {key}={str(extra[key])[:80]} conflicts with {flag}: "
                f"give it once, with {flag}"
            )
    check_model_args(backend, extra)


def check_model_args(backend: str, args: Mapping[str, Any]) -> None:
    """Unknown keys (not an argument of the backend's lm-eval class) and sizes that are not
    integers >= 1 are one error, before any model loads."""
    known = accepted_model_args(backend)
    unknown = sorted(k for k in args if known is not None and k not in known)
    if unknown:
        raise CulturespaError(
            f"model argument {unknown[0][:80]!r}: not an argument of lm-eval's {backend} model "
            "class"
        )
    for key in POSITIVE_SIZE_ARGS:
        value = args.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise CulturespaError(
                f"model argument {key}={str(value)[:80]}: expected an integer >= 1"
            )
