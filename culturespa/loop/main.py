"""`culturespa loop` and `recipes/loop.py`: one parser (`make_parser`) for the subcommand and the
script, and `run_loop`, the one chain of stages every entry runs (`culturespa demo` included).

```bash
culturespa loop --config default        # make loop: data -> train -> evaluate -> report
culturespa loop --config tiny --output-dir runs/smoke/tiny   # make smoke: the tiny model
culturespa loop --config demo --dry-run  # culturespa demo's plan: evaluate -> report
python -m culturespa.loop.main --help
```
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.loop.commands import free_cores, minutes
from culturespa.loop.compare import compare_runs
from culturespa.loop.config import LoopConfig, check_manifest, derived_data_config, load_loop_config
from culturespa.loop.layout import STAGES
from culturespa.loop.stages import Loop
from culturespa.output_folder import check_ours, claim_folder

NOT_A_LOOP = " (a loop run folder holds the loop's loop.json; the loop never adopts another)"
DESCRIPTION = (
    "CultureSPA end to end (build data, train, evaluate, report), resumable and seeded; run it "
    "again after a kill and it continues. --config is a loop YAML: a packaged name (default, "
    "tiny, demo) or a path."
)


def print_comparison(first: Path, second: Path) -> int:
    """`--compare RUN_A RUN_B`: one verdict per file; 0 when the runs are identical, else 1."""
    for folder in (first, second):
        if not (folder / "data").is_dir():
            raise CulturespaError(f"{folder} is not a loop run folder (no data/)")
    verdicts = compare_runs(first, second)
    for rel, verdict in verdicts:
        print(f"{verdict:<45} {rel}")
    return 0 if all(v.startswith("identical") for _, v in verdicts) else 1


def make_parser(
    subparsers: argparse._SubParsersAction | None = None, prog: str = "culturespa loop"
) -> argparse.ArgumentParser:
    """The loop's parser: the `culturespa loop` subcommand, or the script's own (`prog`)."""
    from culturespa.command_line import ArgumentParser, positive_int, seed

    if subparsers is None:
        parser = ArgumentParser(prog=prog, description=DESCRIPTION)
    else:
        parser = subparsers.add_parser(
            "loop", help="CultureSPA end to end: build data, train, evaluate, report",
            description=DESCRIPTION,
        )  # fmt: skip
    parser.add_argument(
        "--config", help="the loop's YAML config: default, tiny, demo, or a path (recipes/loop/)"
    )
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
        default=None,
        help=f"comma-separated stages to run, in the loop's order, of {', '.join(STAGES)} "
        "(default: the config's)",
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
    parser.set_defaults(func=run)
    return parser


def parse_stages(text: str | None) -> list[str] | None:
    """--stages 'eval,report' -> ['eval', 'report'] (None: the config's)."""
    if text is None:
        return None
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages or any(s not in STAGES for s in stages):
        raise CulturespaError(f"--stages {text!r}: stages are {', '.join(STAGES)}")
    return stages


def run_loop(
    config: LoopConfig,
    dry_run: bool = False,
    overwrite: bool = False,
    hint: str = NOT_A_LOOP,
    what: str = "output_dir",
) -> Loop:
    """Run the config's stages on its run folder, one loop per folder (claimed first; a folder
    of other files is refused unless `overwrite`: `what` names the folder, `hint` ends that
    message); the Loop, with its report (`report_built`) and timings."""
    from culturespa.atomic import check_output_dir

    check_output_dir(config.out, what)
    loop = Loop(config, dry_run=dry_run, overwrite=overwrite)
    record = loop.layout.manifest.name
    if not overwrite:
        check_ours(config.out, what, record=record, hint=hint)
    if "data" in config.stages:
        derived_data_config(config, loop.layout)  # checked before anything is written
    if config.in_process and not dry_run:
        import torch

        torch.set_num_threads(config.threads or free_cores())
    claim = claim_folder(config.out, what, overwrite, record=record, hint=hint)
    with nullcontext() if dry_run else claim:  # one loop per folder
        check_manifest(loop.layout, config, write=not dry_run)
        loop.run_stages(tuple(config.stages))
    return loop


def run(args: argparse.Namespace) -> int:
    """`culturespa loop`: CulturespaError for the caller to print as one line."""
    if args.compare:
        return print_comparison(*(Path(p) for p in args.compare))
    if not args.config:
        raise CulturespaError("--config is required (default, tiny, demo, or a loop YAML file)")
    overrides = {
        "output_dir": args.output_dir, "per_topic": args.per_topic, "eval_limit": args.limit,
        "seed": args.seed, "stages": parse_stages(args.stages),
    }  # fmt: skip
    config = load_loop_config(args.config, overrides)
    start = time.perf_counter()
    run_loop(config, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"\nloop done in {minutes(time.perf_counter() - start)} ({config.out})")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m culturespa.loop.main") -> int:
    """The script's entry (`recipes/loop.py`, `python -m culturespa.loop.main`)."""
    from culturespa.command_line import exit_with_error

    parser = make_parser(prog=prog)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; run the same command again to continue", file=sys.stderr
        )
        return 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """`culturespa loop` (culturespa.cli.main)."""
    make_parser(subparsers)


if __name__ == "__main__":
    sys.exit(main())
