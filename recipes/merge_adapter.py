"""Merge a LoRA adapter into its base model and save plain weights, e.g. for vLLM serving: the
script form of `culturespa merge` (`culturespa.cli.merge`, the same parser and code).

```bash
python recipes/merge_adapter.py runs/train/llama3-8b-instruct_culture_joint \\
    runs/merged/llama3-8b-instruct_culture_joint
vllm serve runs/merged/llama3-8b-instruct_culture_joint
culturespa eval --backend vllm --model runs/merged/llama3-8b-instruct_culture_joint \\
    --tasks wvs_gen_culture_aware --output-path runs/eval
```
The base model is read from the adapter's adapter_config.json unless --base-model is given.
"""

from __future__ import annotations

import sys

from culturespa.cli.merge import main as run_merge
from culturespa.cli.merge import make_parser

__all__ = ["main", "make_parser"]


def main(argv: list[str] | None = None) -> int:
    return run_merge(argv, prog="recipes/merge_adapter.py")


if __name__ == "__main__":
    sys.exit(main())
