"""Inference backends behind one interface (`Backend`): transformers, vLLM, OpenAI-compatible HTTP.

Heavy imports (torch, transformers, vllm) happen when a backend is built, never on import.
"""

from __future__ import annotations

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import Backend, ChatTokens, Conversation, SamplingSettings

BACKENDS: tuple[str, ...] = ("hf", "vllm", "openai")
LOCAL_BACKENDS: tuple[str, ...] = ("hf", "vllm")
"""Backends that load weights in this process: their model is a folder or hub id, resolved
(`culturespa.inference.models.resolve_model`) by the caller; `openai` calls a server."""

__all__ = [
    "BACKENDS",
    "LOCAL_BACKENDS",
    "Backend",
    "ChatTokens",
    "Conversation",
    "SamplingSettings",
    "build_backend",
]


def build_backend(kind: str, model: str, **options) -> Backend:
    """Build the backend `kind` ('hf', 'vllm' or 'openai') for `model` with its options."""
    if kind == "hf":
        from culturespa.inference.backends.hf import HFBackend

        return HFBackend(model, **options)
    if kind == "vllm":
        from culturespa.inference.backends.vllm import VLLMBackend

        return VLLMBackend(model, **options)
    if kind == "openai":
        from culturespa.inference.backends.openai import OpenAICompatBackend

        return OpenAICompatBackend(model, **options)
    raise CulturespaError(f"unknown backend {kind!r}; use one of {', '.join(BACKENDS)}")
