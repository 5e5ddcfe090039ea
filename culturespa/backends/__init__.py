"""Inference backends behind one interface (`Backend`): transformers, vLLM, OpenAI-compatible HTTP.

Heavy imports (torch, transformers, vllm) happen when a backend is built, never on import.
"""

from __future__ import annotations

from culturespa.backends.base import Backend, ChatTokens, Conversation, SamplingSettings
from culturespa.errors import CulturespaError

BACKENDS: tuple[str, ...] = ("hf", "vllm", "openai")

__all__ = [
    "BACKENDS",
    "Backend",
    "ChatTokens",
    "Conversation",
    "SamplingSettings",
    "build_backend",
    "resolve_model",
]


def resolve_model(name: str) -> str:
    """A model name as the user typed it -> what to load (see `resolve_model_path`)."""
    from culturespa.default_model import resolve_model_path

    return resolve_model_path(name)


def build_backend(kind: str, model: str, **options) -> Backend:
    """Build the backend `kind` ('hf', 'vllm' or 'openai') for `model` with its options."""
    if kind == "hf":
        from culturespa.backends.hf import HFBackend

        return HFBackend(model, **options)
    if kind == "vllm":
        from culturespa.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model, **options)
    if kind == "openai":
        from culturespa.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(model, **options)
    raise CulturespaError(f"unknown backend {kind!r}; use one of {', '.join(BACKENDS)}")
