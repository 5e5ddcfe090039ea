"""lm-eval model arguments: parsed and typed once, checked, built per backend."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.inference.models import resolve_model

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
    """lm-eval model arguments for a backend: weights path or API model name, adapter, seed."""
    if backend not in BACKENDS:
        raise CulturespaError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    args: dict[str, Any] = {}
    if backend in WEIGHTS_BACKENDS:
        args["pretrained"] = resolve_model(model)
    else:
        args["model"] = model
    if peft:
        if backend not in _ADAPTER_ARG:
            raise CulturespaError(
                f"an adapter (--peft) needs weights: use hf or vllm, not {backend}"
            )
        args[_ADAPTER_ARG[backend]] = peft
    if backend == "vllm" and seed is not None:
        args["seed"] = seed
    args.update(parse_model_args(model_args))
    return args
