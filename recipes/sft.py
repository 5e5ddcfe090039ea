"""LoRA SFT on CultureSPA training data, with loss on the assistant's answer only.

# Culture-joint adapter for Llama-3-8B-Instruct on one GPU (data: culturespa build-data)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \
    --config recipes/llama3-8b-instruct_culture_joint.yaml
```

# One culture-specific adapter per country, all in one command (or --countries USA,CHN)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \
    --config recipes/llama3-8b-instruct_culture_specific.yaml --countries all
```

# CPU smoke run on the tiny test model; flags override the YAML, unknown YAML keys are errors
```bash
python recipes/sft.py --config recipes/tiny_cpu_smoke.yaml \
    --model_name_or_path runs/tiny_llama --dataset_path runs/data/tiny/sft/culture_joint
```
"""

from __future__ import annotations

import shlex
import sys

from trl import ModelConfig, SFTConfig, TrlParser

from culturespa.command_line import one_line_errors
from culturespa.errors import CulturespaError
from culturespa.training.arguments import (
    CultureSPAScriptArguments,
    config_path,
    parse_recipe_args,
)
from culturespa.training.trainer import train


def main(script_args, training_args, model_args, provenance: dict | None = None) -> None:
    """Train the culture-joint adapter, or one adapter per country when `countries` is set."""
    train(script_args, training_args, model_args, provenance)


def make_parser(prog: str | None = "recipes/sft.py") -> TrlParser:
    """TRL's parser over culturespa's script arguments, SFTConfig and ModelConfig."""
    parser = TrlParser((CultureSPAScriptArguments, SFTConfig, ModelConfig), prog=prog)
    return one_line_errors(parser)


def cli(argv: list[str] | None = None) -> int:
    """Parse (the recipe checked first), train; a culturespa error is one line, exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        script_args, training_args, model_args = parse_recipe_args(argv, make_parser())
        provenance = {"recipe": config_path(argv), "command": shlex.join(["recipes/sft.py", *argv])}
        main(script_args, training_args, model_args, provenance)
    except CulturespaError as exc:
        print(f"recipes/sft.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
