"""`culturespa build-data`: turn an instruct model into its own CultureSPA training set.

    culturespa build-data --config recipes/data/smollm2_cpu.yaml            # the whole flow
    culturespa build-data answer --config recipes/data/smollm2_cpu.yaml     # one stage

Every stage resumes from its log: run the same command again after a crash or a kill. A `ray`
section in the config runs the model stages (generate, answer) on model replicas on Ray.
"""

from __future__ import annotations

import argparse
import json
import time

from culturespa.errors import CulturespaError

STAGE_CHOICES = ("all", "generate", "filter", "answer", "collect", "build")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build-data",
        help="build a CultureSPA training set from a model (generate, filter, answer, collect, build)",
        description=(
            "Run the self-pluralising data builder from one YAML config: all stages, or one. "
            "Stages resume from their logs, so rerunning the command after an interruption "
            "finishes the work without losing or repeating records."
        ),
    )
    parser.add_argument(
        "stage",
        nargs="?",
        default="all",
        choices=STAGE_CHOICES,
        help="stage to run (default: all, in order)",
    )
    parser.add_argument("--config", help="YAML config (see recipes/data/)")
    parser.add_argument(
        "--keys",
        action="store_true",
        help="print every config key with its default and meaning, then exit",
    )
    parser.add_argument("--output-dir", help="override output_dir of the config")
    parser.add_argument("--model", help="override model.name of the config")
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="removed: set `ray: {replicas: N}` in the config (a local Ray, or ray.address for a "
        "cluster) to spread generate and answer over N model replicas",
    )
    parser.set_defaults(func=run)


SHARD_REMOVED = (
    "--shard was removed: add `ray: {replicas: N}` to the config to run generate and answer on N "
    "model replicas (a local Ray; ray.address: auto or ray://host:10001 for a cluster); "
    "`culturespa build-data --keys` lists the ray keys"
)


def _print_summary(stage: str, summary: dict) -> None:
    print(f"[{stage}] {json.dumps(summary, ensure_ascii=False)}", flush=True)


def run(args: argparse.Namespace) -> int:
    from culturespa.pluralise.config import config_reference, load_config
    from culturespa.pluralise.pipeline import STAGES, run_pipeline

    if args.keys:
        print(config_reference(), end="")
        return 0
    if args.shard is not None:
        raise CulturespaError(SHARD_REMOVED)
    if not args.config:
        raise CulturespaError(
            "build-data needs --config <file.yaml> (examples in recipes/data/; "
            "`culturespa build-data --keys` lists every key)"
        )
    config = load_config(args.config, {"output_dir": args.output_dir, "model_name": args.model})
    stages = STAGES if args.stage == "all" else (args.stage,)
    start = time.perf_counter()
    run_pipeline(config, stages=stages, report=_print_summary)
    print(f"done in {time.perf_counter() - start:.1f}s; output in {config.out}", flush=True)
    return 0
