"""LoRA SFT on CultureSPA training data, with loss on the assistant's answer only: the script
form of `culturespa train` (`culturespa.cli.train`, the same parser and code).

# Culture-joint adapter for Llama-3-8B-Instruct on one GPU (data: culturespa build-data)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \\
    --config recipes/llama3-8b-instruct_culture_joint.yaml
```

# One culture-specific adapter per country, all in one command (or --countries USA,CHN)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \\
    --config recipes/llama3-8b-instruct_culture_specific.yaml --countries all
```

# CPU smoke run on the tiny test model; flags override the YAML, unknown YAML keys are errors
```bash
python recipes/sft.py --config recipes/tiny_cpu_smoke.yaml \\
    --model_name_or_path runs/tiny_llama --dataset_path runs/data/tiny/sft/culture_joint
```
"""

from __future__ import annotations

import sys

from culturespa.cli.train import main as run_train
from culturespa.cli.train import make_parser

__all__ = ["main", "make_parser"]


def main(argv: list[str] | None = None) -> int:
    return run_train(argv, prog="recipes/sft.py")


if __name__ == "__main__":
    sys.exit(main())
