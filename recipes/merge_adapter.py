"""Merge a LoRA adapter into its base model and save plain weights, e.g. for vLLM serving.

```bash
python recipes/merge_adapter.py runs/train/llama3-8b-instruct_culture_joint \
    runs/merged/llama3-8b-instruct_culture_joint
vllm serve runs/merged/llama3-8b-instruct_culture_joint
culturespa eval --backend vllm --model runs/merged/llama3-8b-instruct_culture_joint \
    --tasks wvs_gen_culture_aware --output-path runs/eval
```
The base model is read from the adapter's adapter_config.json unless --base-model is given.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from culturespa.cli.parsing import ArgumentParser, exit_with_error

    parser = ArgumentParser(prog="recipes/merge_adapter.py", description=__doc__.splitlines()[0])
    parser.add_argument("adapter", help="adapter folder written by recipes/sft.py")
    parser.add_argument("output", help="folder for the merged checkpoint (replaced as a whole)")
    parser.add_argument(
        "--base-model", default=None, help="base model id or folder (default: from the adapter)"
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=("bfloat16", "float16", "float32"),
        help="weights dtype (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    from culturespa.errors import CulturespaError
    from culturespa.training import merge_adapter

    try:
        path = merge_adapter(
            args.adapter, args.output, base_model=args.base_model, dtype=args.dtype
        )
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))
    print(f"merged checkpoint saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
