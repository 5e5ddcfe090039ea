"""`culturespa build-data`: turn an instruct model into its own CultureSPA training set.

    culturespa build-data --config recipes/data/smollm2_cpu.yaml            # the whole flow
    culturespa build-data answer --config recipes/data/smollm2_cpu.yaml     # one stage
    culturespa build-data answer --config X.yaml --shard 0/4                # one shard of four

Every stage resumes from its log: run the same command again after a crash or a kill.
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
    parser.add_argument("--shard", help="I/N: run shard I of N (generate and answer only)")
    parser.set_defaults(func=run)


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """'1/4' -> (1, 4)."""
    if spec is None:
        return None
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError:
        raise CulturespaError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise CulturespaError(f"--shard {spec!r}: need 0 <= I < N")
    return index, count


def _print_summary(stage: str, summary: dict) -> None:
    print(f"[{stage}] {json.dumps(summary, ensure_ascii=False)}", flush=True)


def run(args: argparse.Namespace) -> int:
    from culturespa.pluralise.config import config_reference, load_config
    from culturespa.pluralise.pipeline import STAGES, Run, check_stage

    if args.keys:
        print(config_reference(), end="")
        return 0
    if not args.config:
        raise CulturespaError(
            "build-data needs --config <file.yaml> (examples in recipes/data/; "
            "`culturespa build-data --keys` lists every key)"
        )
    config = load_config(args.config, {"output_dir": args.output_dir, "model_name": args.model})
    shard = parse_shard(args.shard)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if shard is not None and shard[1] > 1 and args.stage == "all":
        raise CulturespaError("--shard needs a stage: generate or answer")
    for stage in stages:
        check_stage(stage, shard)
    pipeline = Run(config, shard=shard)
    start = time.perf_counter()
    try:
        for stage in stages:
            _print_summary(stage, pipeline.run_stage(stage))
    finally:
        pipeline.close()
    print(f"done in {time.perf_counter() - start:.1f}s; output in {config.out}", flush=True)
    return 0
