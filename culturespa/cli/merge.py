"""`culturespa merge`: merge a LoRA adapter into its base model and save plain weights, e.g. for
vLLM serving. The same parser serves the subcommand and the script `recipes/merge_adapter.py`.

    culturespa merge runs/train/llama3-8b-instruct_culture_joint \\
        runs/merged/llama3-8b-instruct_culture_joint
    vllm serve runs/merged/llama3-8b-instruct_culture_joint

The base model is read from the adapter's adapter_config.json unless --base-model is given.
"""

from __future__ import annotations

import argparse
import sys

from culturespa.command_line import ArgumentParser, exit_with_error
from culturespa.errors import CulturespaError

DESCRIPTION = "Merge a LoRA adapter into its base model and save plain weights (e.g. for vLLM)."


def make_parser(
    subparsers: argparse._SubParsersAction | None = None, prog: str | None = None
) -> argparse.ArgumentParser:
    """The `merge` subcommand of `culturespa` when given its subparsers, else a parser of its own."""
    if subparsers is not None:
        parser = subparsers.add_parser(
            "merge", help="merge a LoRA adapter into its base model", description=DESCRIPTION
        )
    else:
        parser = ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("adapter", help="adapter folder written by `culturespa train`")
    parser.add_argument(
        "output",
        help="folder for the merged checkpoint (a new or empty one, or one it wrote before: "
        "its older checkpoint is replaced)",
    )
    parser.add_argument(
        "--base-model", default=None, help="base model id or folder (default: from the adapter)"
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=("bfloat16", "float16", "float32"),
        help="weights dtype (default: %(default)s)",
    )
    parser.set_defaults(func=run)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    make_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    from culturespa.training.merge import merge_adapter

    path = merge_adapter(args.adapter, args.output, base_model=args.base_model, dtype=args.dtype)
    print(f"merged checkpoint saved to {path}")
    return 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The merge as a script: a culturespa error is one line, exit code 2."""
    parser = make_parser(prog=prog)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))


if __name__ == "__main__":
    sys.exit(main(prog="python -m culturespa.cli.merge"))
