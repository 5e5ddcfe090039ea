"""Merge a LoRA adapter into its base model and save plain weights, e.g. for vLLM serving
(`culturespa merge`, `recipes/merge_adapter.py`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from culturespa.atomic import check_output_dir
from culturespa.errors import CulturespaError
from culturespa.output_folder import claim_folder, write_errors
from culturespa.run_files import MODEL_CARD, TRAINING_RECORD

logger = logging.getLogger(__name__)


def merge_adapter(
    adapter_dir: str | Path,
    output_dir: str | Path,
    base_model: str | None = None,
    dtype: str = "bfloat16",
) -> Path:
    """Merge a LoRA adapter into its base weights and save a plain checkpoint (for vLLM serving)."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise CulturespaError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter folder)")
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise CulturespaError(f"dtype: unknown torch dtype {dtype!r}")
    check_output_dir(output_dir, "output folder")
    # The folder is claimed before the model loads (a folder of other files is refused); the
    # checkpoint is staged and committed as a set: culturespa's older checkpoint files are
    # replaced, nothing else there is touched (`culturespa.output_folder`).
    with claim_folder(output_dir, "output folder", hint="", kind="checkpoint") as folder:
        base = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
        model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        with folder.staging() as build, write_errors(output_dir):
            merged.save_pretrained(build)
            # The adapter folder holds the training tokenizer (with its chat template); else the
            # base model's.
            source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
            AutoTokenizer.from_pretrained(source).save_pretrained(build)
            for name in (MODEL_CARD, TRAINING_RECORD):
                if (adapter_dir / name).is_file():
                    shutil.copyfile(adapter_dir / name, build / f"adapter_{name}")
            folder.commit(build, replace=True)
    logger.info("merged %s into %s -> %s", adapter_dir, base, output_dir)
    return output_dir
