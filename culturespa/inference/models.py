"""What a model name means, decided once at the boundary: `resolve_model` and `pick_device`.

Every command takes a model the same way: 'default', 'smollm2' or 'smollm2-135m-instruct' (any
case), or no name, select the embedded SmolLM2-135M-Instruct (fetched and converted on first use,
see `culturespa.inference.default_model`); anything else is a Hugging Face id or a local folder
and passes through unchanged. Call `resolve_model` where a name enters (CLI, config, script) and
pass the resolved value on.
"""

from __future__ import annotations


def resolve_model(name: str | None) -> str:
    """A model name as the user typed it -> what to load (a folder or a hub id)."""
    from culturespa.inference.default_model import fetch_default_model, is_default_model

    if is_default_model(name):
        return str(fetch_default_model())
    return str(name)


def pick_device(device: str | None = "auto") -> str:
    """'auto' (or None): cuda when torch sees a GPU, then Apple's mps, else cpu; else as given."""
    import torch

    if device not in (None, "auto"):
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
