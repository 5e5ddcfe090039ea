"""`culturespa tasks-path`, `culturespa tasks` and `culturespa eval`: the lm-eval tasks from the CLI."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from culturespa.atomic import check_output_dir
from culturespa.cli.parsing import seed_list
from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.command_line import batch_size, item_limit, seed
from culturespa.inference.model_args import BACKENDS
from culturespa.scoring.metric_names import COUNT_METRICS
from culturespa.text_cells import terminal_text


def register(subparsers: argparse._SubParsersAction) -> None:
    path = subparsers.add_parser(
        "tasks-path",
        help="print the installed lm-eval task folder (for lm_eval --include_path)",
        description="Print the folder of the WVS lm-eval tasks, for `lm_eval --include_path`.",
    )
    path.set_defaults(func=run_tasks_path)

    listing = subparsers.add_parser(
        "tasks",
        help="list the WVS lm-eval tasks and groups; `tasks build` writes them for a survey",
        description="List the WVS task and group names, optionally filtered by globs. "
        "`tasks build --survey DIR --out TASKDIR`: every task of a survey folder, for lm-eval.",
    )
    listing.add_argument("patterns", nargs="*", help="globs such as 'wvs_culture_aware_*'")
    add_survey_option(listing, "tasks build: the survey folder")
    listing.add_argument("--out", type=Path, metavar="TASKDIR", help="tasks build: task folder")
    listing.set_defaults(func=run_tasks)
    register_eval(subparsers)


def register_eval(subparsers: argparse._SubParsersAction) -> None:
    """`culturespa eval`: its flags."""
    ev = subparsers.add_parser(
        "eval",
        help="evaluate a model on WVS tasks with lm-eval (globs allowed)",
        description=(
            "Run lm-eval's simple_evaluate on the WVS tasks: expands globs, applies the chat "
            "template, runs requests shared by several tasks once, and adds bootstrap 95%% "
            "intervals of each task's alignment. Example: culturespa eval --model "
            "meta-llama/Meta-Llama-3-8B-Instruct --tasks 'wvs_culture_aware_*' --output-path runs/eval"
        ),
    )
    ev.add_argument(
        "--model",
        default=None,
        help="HF id, local dir, 'default', or API model name (with --adapters: adapters.json's "
        "base model unless given)",
    )
    ev.add_argument("--tasks", required=True, help="task/group names or globs, comma-separated")
    ev.add_argument("--backend", default="hf", choices=BACKENDS, help="lm-eval model type")
    ev.add_argument(
        "--model-args",
        default=None,
        help="extra lm-eval model_args, k=v,k2=v2, typed as lm-eval types them (true/false are "
        "booleans); trust_remote_code=true runs Python code shipped with the model",
    )
    ev.add_argument(
        "--peft", default=None, help="LoRA adapter dir (hf: peft=, vllm: lora_local_path=)"
    )
    add_adapter_options(ev)
    ev.add_argument(
        "--no-chat-template",
        dest="apply_chat_template",
        action="store_false",
        help="feed plain text (base models); by default the chat template is applied",
    )
    ev.add_argument("--batch-size", type=batch_size, default=1, help="batch size or 'auto'")
    ev.add_argument("--seed", type=seed, default=42, help="seed of Python, numpy, torch (and vllm)")
    ev.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="several runs, one per seed, e.g. 42,41,40 or 'paper' (the paper's three seeds): "
        "sampled tasks run once per seed, log-likelihood tasks once; `culturespa report` "
        "shows the mean over runs and their spread",
    )
    ev.add_argument(
        "--limit",
        type=item_limit,
        default=None,
        help="items per task, or a fraction of them below 1 (testing only)",
    )
    add_output_options(ev)
    ev.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda if present)")
    ev.add_argument(
        "--no-dedup",
        dest="deduplicate",
        action="store_false",
        help="send identical requests of different tasks to the model each time",
    )
    add_survey_option(ev, "a survey folder from `culturespa survey build`: its tasks are run")
    ev.set_defaults(func=run_eval)


def add_output_options(ev: argparse.ArgumentParser) -> None:
    """`culturespa eval`'s output flags: where results go, sample logs, the request cache."""
    ev.add_argument(
        "--output-path",
        type=Path,
        default=None,
        help="folder for lm-eval's results JSON (checked writable before the model loads)",
    )
    ev.add_argument("--log-samples", action="store_true", help="also write per-item sample logs")
    ev.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --output-path culturespa did not make (its files stay)",
    )
    ev.add_argument(
        "--use-cache",
        default=None,
        metavar="NAME",
        help="reuse model replies across runs in lm-eval's request cache NAME (a name, not a "
        "path): $CULTURESPA_CACHE/requests/NAME/requests_rank0.db (lm-eval appends _rank<N>.db). "
        "A cache file is code (lm-eval unpickles it): culturespa records each file's SHA-256 "
        "after a run and refuses a file it did not write or that changed",
    )


def add_adapter_options(ev: argparse.ArgumentParser) -> None:
    """`culturespa eval --adapters DIR [--countries ...]`: the culture-specific adapters."""
    ev.add_argument(
        "--adapters",
        default=None,
        metavar="DIR",
        help="culture-specific adapters: a training output folder holding adapters.json; each "
        "country's adapter runs on its own country's task of each group in --tasks "
        "(wvs_culture_aware), one results file each; `culturespa report` shows them as one row",
    )
    ev.add_argument(
        "--countries",
        default=None,
        help="with --adapters: only these countries' adapters, ISO-3 codes (USA,CHN); default: "
        "every adapter of adapters.json",
    )


def run_tasks_path(args: argparse.Namespace) -> int:
    from culturespa.evaluation.tasks import task_dir

    print(task_dir())
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from culturespa.evaluation.tasks import expand_tasks, task_manager

    if args.patterns[:1] == ["build"]:
        return run_tasks_build(args)

    names = task_manager().all_tasks
    selected = expand_tasks(args.patterns, names) if args.patterns else names
    for name in selected:
        print(name)
    return 0


def run_tasks_build(args: argparse.Namespace) -> int:
    """`culturespa tasks build --survey DIR --out TASKDIR`."""
    from culturespa.errors import CulturespaError
    from culturespa_tasks.generate import build_task_folder

    if len(args.patterns) > 1 or args.survey is None or args.out is None:
        raise CulturespaError("usage: culturespa tasks build --survey DIR --out TASKDIR")
    written = build_task_folder(args.survey, args.out)
    print(f"wrote {len(written)} files to {args.out}; run: lm_eval --include_path {args.out} ...")
    return 0


def _fmt(value: object) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return f"{100 * value:.2f}"


def _fmt_metric(name: str, value: object) -> str:
    """A share or score x100; a count of items (`COUNT_METRICS`) as the count itself."""
    if name in COUNT_METRICS and isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:g}"
    return _fmt(value)


def format_summary(results: dict) -> str:
    """One line per task and group: alignment x100 with its bootstrap interval, then the others
    (shares and scores x100, counts of items as counts)."""
    intervals = results.get("culturespa", {}).get("alignment_ci95", {})
    header = f"other metrics (x100; {', '.join(COUNT_METRICS)}: items)"
    lines = [f"{'task':<40} {'alignment':>9} {'95% CI':>16}  {header}"]
    for name, metrics in results["results"].items():
        ci = intervals.get(name)
        ci_text = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""
        others = ", ".join(
            f"{key.split(',')[0]} {_fmt_metric(key.split(',')[0], value)}"
            for key, value in metrics.items()
            if key.endswith(",none") and "stderr" not in key and not key.startswith("alignment,")
        )
        shown = terminal_text(name)
        lines.append(
            f"{shown:<40} {_fmt(metrics.get('alignment,none')):>9} {ci_text:>16}  {others}"
        )
    return "\n".join(lines)


@contextmanager
def _survey_tasks(survey: Path | None) -> Iterator[Path | None]:
    """The tasks of a survey folder, built into a temporary folder for one run (None: shipped)."""
    from culturespa.evaluation.survey_tasks import survey_task_folder

    with survey_task_folder(survey) as folder:
        yield folder


def _check_eval_args(args: argparse.Namespace) -> tuple[str, ...] | None:
    """Refuse a bad combination before tasks or models load; the --countries of --adapters."""
    from culturespa.errors import CulturespaError
    from culturespa.inference.model_args import check_extra_model_args, parse_model_args
    from culturespa.inference.models import check_device, check_device_present
    from culturespa.survey.countries import parse_countries

    if args.model is None and args.adapters is None:
        raise CulturespaError(
            "--model is required (or --adapters DIR of culture-specific adapters)"
        )
    if args.adapters is not None and args.peft is not None:
        raise CulturespaError(
            "--peft and --adapters exclude each other: one adapter or one per country"
        )
    if args.countries is not None and args.adapters is None:
        raise CulturespaError("--countries selects adapters: it goes with --adapters")
    if args.output_path is not None:
        check_output_dir(args.output_path, "--output-path")
    # A bad value, a second model or an unknown key fails here, before tasks or models load.
    check_extra_model_args(args.backend, parse_model_args(args.model_args), args.peft)
    check_device_present(check_device(args.device, "--device"), "--device")
    return parse_countries(args.countries) if args.countries else None


def run_eval(args: argparse.Namespace) -> int:
    from culturespa.evaluation.run import EvalOptions, run_evaluations
    from culturespa.evaluation.specific import evaluate_culture_specific

    use_survey_option(args)  # before --countries, which are of that survey
    countries = _check_eval_args(args)
    seeds = args.seeds or [args.seed]
    with _survey_tasks(args.survey) as task_folder:
        options = EvalOptions(
            backend=args.backend,
            model_args=args.model_args,
            peft=args.peft,  # None with --adapters: each country's adapter instead
            apply_chat_template=args.apply_chat_template,
            batch_size=args.batch_size,
            limit=args.limit,
            output_path=args.output_path,
            overwrite=args.overwrite,
            log_samples=args.log_samples,
            use_cache=args.use_cache,
            device=args.device,
            deduplicate=args.deduplicate,
            task_folder=task_folder,
        )
        if args.adapters is not None:
            by_country = evaluate_culture_specific(
                args.adapters, args.tasks, options, args.model, countries, seeds
            )
            runs = [results for country_runs in by_country.values() for results in country_runs]
        else:
            runs = run_evaluations(args.model, args.tasks, seeds, options)
    print_runs(runs)
    if args.output_path:
        print(f"results written under {args.output_path}")
    return 0


def print_runs(runs: list[dict]) -> None:
    """Each run's summary table and request counts (with its seed when there are several)."""
    seeds = {results["config"].get("random_seed") for results in runs if results}
    for results in runs:
        if not results:
            continue
        if len(seeds) > 1:
            print(f"\nseed {results['config'].get('random_seed')}:")
        print(format_summary(results))
        requests = results["culturespa"]["requests"]
        if requests["received"]:
            sent = requests.get("sent", {})
            counts = ", ".join(
                f"{kind} {n} -> {sent.get(kind, 0)}" for kind, n in requests["received"].items()
            )
            print(f"model requests (received -> sent): {counts}")


__all__ = ["format_summary", "register", "run_eval", "run_tasks", "run_tasks_path"]
