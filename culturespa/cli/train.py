"""`culturespa train`: LoRA SFT on CultureSPA training data, with the loss on the assistant's
answer only. The same parser (`make_parser`, in TRL's shape) serves the subcommand, the script
`recipes/sft.py` and `python -m culturespa.cli.train`; flags override the recipe's values,
unknown recipe keys are errors.

    # the culture-joint adapter for Llama-3-8B-Instruct on one GPU (data: culturespa build-data)
    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \\
        --config recipes/llama3-8b-instruct_culture_joint.yaml
    # the same from an installed package, with no clone: recipes are found by their path in it
    accelerate launch -m culturespa.cli.train --config recipes/llama3-8b-instruct_culture_joint.yaml
    # one adapter per country (or --countries USA,CHN); a CPU run of the tiny recipe
    culturespa train --config recipes/llama3-8b-instruct_culture_specific.yaml --countries all
    culturespa train --config recipes/tiny_cpu_smoke.yaml \\
        --model_name_or_path runs/tiny_llama --dataset_path runs/data/tiny/sft/culture_joint
"""

from __future__ import annotations

import argparse
import shlex
import sys

from culturespa.command_line import one_line_errors
from culturespa.errors import CulturespaError

DESCRIPTION = (
    "LoRA SFT with TRL on a CultureSPA training set, loss on the assistant's answer only. "
    "--config reads a recipe (a YAML file, or a packaged recipe by path or name: "
    "recipes/tiny_cpu_smoke.yaml, tiny_cpu_smoke); flags override its values."
)
CONFIG_HELP = (
    "training recipe: a YAML file, or a packaged one by path or name "
    "(recipes/llama3-8b-instruct_culture_joint.yaml, tiny_cpu_smoke)"
)


def make_parser(
    subparsers: argparse._SubParsersAction | None = None, prog: str | None = None
) -> argparse.ArgumentParser:
    """TRL's parser over culturespa's script arguments, SFTConfig and ModelConfig.

    Given `culturespa`'s subparsers it registers `train` without importing TRL (seconds, on
    every `culturespa` command): the subcommand takes its arguments as they are and parses them
    with this same parser when it runs (`run`), so `culturespa train --help` lists them too."""
    if subparsers is not None:
        parser = subparsers.add_parser(
            "train",
            help="train a LoRA adapter (or one per country) on a CultureSPA training set",
            description=DESCRIPTION,
            add_help=False,  # --help goes to the full parser, which lists every field
        )
        parser.set_defaults(func=run, forwards_arguments=True)
        return parser
    from trl import ModelConfig, SFTConfig, TrlParser

    from culturespa.training.arguments import CultureSPAScriptArguments

    parser = TrlParser(
        (CultureSPAScriptArguments, SFTConfig, ModelConfig), prog=prog, description=DESCRIPTION
    )
    # Listed for --help; `parse_recipe_args` takes it off the command line before parsing.
    parser.add_argument("--config", metavar="RECIPE", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return one_line_errors(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    make_parser(subparsers)


def train_from_command_line(argv: list[str], prog: str) -> None:
    """Parse (the recipe read and checked once, first), then train the joint adapter, or one
    adapter per country when `countries` is set."""
    from culturespa.training.arguments import parse_recipe_args
    from culturespa.training.trainer import train

    script_args, training_args, model_args, recipe = parse_recipe_args(argv, make_parser(prog=prog))
    provenance = {
        "recipe": None if recipe is None else str(recipe),
        "command": f"{prog} {shlex.join(argv)}".strip(),  # prog: words as they are
    }
    train(script_args, training_args, model_args, provenance)


def run(args: argparse.Namespace) -> int:
    """`culturespa train ...`: the arguments after `train`, as given."""
    train_from_command_line(list(args.forwarded_arguments), "culturespa train")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m culturespa.cli.train") -> int:
    """The training as a script: a culturespa error is one line, exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        train_from_command_line(argv, prog)
    except CulturespaError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
