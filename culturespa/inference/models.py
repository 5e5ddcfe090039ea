"""What a model name means, decided once at the boundary: `resolve_model` and `pick_device`.

Every command takes a model the same way: 'default', 'smollm2' or 'smollm2-135m-instruct' (any
case), or no name, select the embedded SmolLM2-135M-Instruct (fetched and converted on first use,
see `culturespa.inference.default_model`); anything else is a Hugging Face id or a local folder
and passes through unchanged. Call `resolve_model` where a name enters (CLI, config, script) and
pass the resolved value on.
"""

from __future__ import annotations

import os
import re

from culturespa.errors import CulturespaError


def resolve_model(name: str | None) -> str:
    """A model name as the user typed it -> what to load (a folder or a hub id)."""
    from pathlib import Path

    from culturespa.inference.default_model import (
        MARKER_FILE,
        fetch_default_model,
        is_default_model,
        verify_checkpoint,
    )

    if is_default_model(name):
        return str(fetch_default_model())
    if (Path(str(name)) / MARKER_FILE).is_file():
        verify_checkpoint(Path(str(name)))  # a converted cache named by its path is checked too
    return str(name)


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DEVICES_ALLOWED = "auto, cpu, cuda, cuda:N or mps"


def check_device(device: str | None, where: str) -> str | None:
    """A device as torch names it (auto, cpu, cuda, cuda:N, mps), checked before any model
    loads; anything else is one error naming `where` (the flag or config key)."""
    if device is None:
        return None
    if not isinstance(device, str) or not _DEVICE.fullmatch(device.strip()):
        shown = device if isinstance(device, str) else repr(device)
        raise CulturespaError(f"{where} {shown[:80]!r}: expected {DEVICES_ALLOWED}")
    return device.strip()


def check_device_present(device: str | None, where: str) -> None:
    """A CUDA device (`cuda`, `cuda:N`) that this machine's torch sees, checked where the model
    will load and before it does: no CUDA, or no GPU of that index, is one error naming `where`."""
    if device is None or not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise CulturespaError(
            f"{where} {device!r}: torch sees no CUDA GPU on this machine (torch "
            f"{torch.__version__}); use cpu or auto"
        )
    count = torch.cuda.device_count()
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise CulturespaError(
            f"{where} {device!r}: torch sees {count} CUDA GPU{'s' if count > 1 else ''} "
            f"({seen}; CUDA_VISIBLE_DEVICES {visible})"
        )


def pick_device(device: str | None = "auto", where: str = "device") -> str:
    """'auto' (or None): cuda when torch sees a GPU, then Apple's mps, else cpu; else as given,
    a CUDA device checked to exist (`check_device_present`)."""
    import torch

    if device not in (None, "auto"):
        check_device_present(device, where)
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_remote_code(model: str, trust_remote_code: bool, where: str) -> None:
    """Refuse, before anything loads, a local model folder that only loads by running its own
    Python code (config.json `auto_map` with a model type transformers does not know) when
    trust_remote_code is false: one line instead of transformers' error deep in a stage."""
    from pathlib import Path

    from culturespa.bounded_input import read_json_file

    config = Path(model).expanduser() / "config.json"
    if trust_remote_code or not config.is_file():
        return
    data = read_json_file(config, "model config")
    if not isinstance(data, dict) or not isinstance(data.get("auto_map"), dict):
        return
    from transformers import CONFIG_MAPPING

    model_type = data.get("model_type")
    if isinstance(model_type, str) and model_type in CONFIG_MAPPING:
        return  # transformers has its own class for it; the folder's code is not needed
    raise CulturespaError(
        f"{where}: model folder {model} loads only with its own Python code (config.json "
        f"auto_map, model_type {str(model_type)[:80]!r}) and trust_remote_code is false; "
        "culturespa runs no code shipped in a model folder"
    )
