"""`recipes/loop.py`'s command line."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.loop.commands import minutes
from culturespa.loop.compare import compare_runs
from culturespa.loop.config import check_manifest, derived_data_config, load_loop_config
from culturespa.loop.layout import STAGES
from culturespa.loop.stages import Loop
from culturespa.output_folder import check_ours, claim_folder

NOT_A_LOOP = " (a loop run folder holds the loop's loop.json; the loop never adopts another)"


def print_comparison(first: Path, second: Path) -> int:
    """`--compare RUN_A RUN_B`: one verdict per file; 0 when the runs are identical, else 1."""
    for folder in (first, second):
        if not (folder / "data").is_dir():
            raise CulturespaError(f"{folder} is not a loop run folder (no data/)")
    verdicts = compare_runs(first, second)
    for rel, verdict in verdicts:
        print(f"{verdict:<45} {rel}")
    return 0 if all(v.startswith("identical") for _, v in verdicts) else 1


def main(argv: list[str] | None = None) -> int:
    from culturespa.command_line import ArgumentParser, exit_with_error, positive_int, seed

    parser = ArgumentParser(
        prog="recipes/loop.py",
        description="CultureSPA end to end (build data, train, evaluate, report), resumable and "
        "seeded; run it again after a kill and it continues.",
    )
    parser.add_argument("--config", help="the loop's YAML config (recipes/loop/*.yaml)")
    parser.add_argument("--output-dir", default=None, help="run folder (overrides the config)")
    parser.add_argument(
        "--per-topic", type=positive_int, default=None, help="kept questions per topic (overrides)"
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="WVS items per country (overrides)"
    )
    parser.add_argument("--seed", type=seed, default=None, help="seed of every stage (overrides)")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated stages to run, in the loop's order (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would run and what is skipped"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="compare the data and adapters of two run folders (exit 1 when they differ)",
    )
    args = parser.parse_args(argv)
    try:
        if args.compare:
            return print_comparison(*(Path(p) for p in args.compare))
        if not args.config:
            raise CulturespaError(
                "--config is required (e.g. recipes/loop/smollm2-135m-instruct.yaml)"
            )
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise CulturespaError(f"--stages {args.stages!r}: stages are {', '.join(STAGES)}")
        config = load_loop_config(
            args.config,
            {"output_dir": args.output_dir, "per_topic": args.per_topic, "eval_limit": args.limit,
             "seed": args.seed},
        )  # fmt: skip
        from culturespa.atomic import check_output_dir

        check_output_dir(config.out, "output_dir")
        loop = Loop(config, dry_run=args.dry_run)
        check_ours(config.out, "output_dir", record=loop.layout.manifest.name, hint=NOT_A_LOOP)
        derived_data_config(config, loop.layout)  # checked before anything is written
        with (
            nullcontext()
            if args.dry_run
            else claim_folder(
                config.out, "output_dir", record=loop.layout.manifest.name, hint=NOT_A_LOOP
            )
        ):  # one loop per folder
            check_manifest(loop.layout, config, write=not args.dry_run)
            start = time.perf_counter()
            loop.run_stages(stages)
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))
    except KeyboardInterrupt:
        print(
            "recipes/loop.py: interrupted; run the same command again to continue", file=sys.stderr
        )
        return 130
    if not args.dry_run:
        print(f"\nloop done in {minutes(time.perf_counter() - start)} ({config.out})")
    return 0
