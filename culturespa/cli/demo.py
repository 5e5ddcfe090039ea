"""`culturespa demo`: the main job, a real model's cultural alignment per country in minutes."""

from __future__ import annotations

import argparse
import time

from culturespa.cli.parsing import way_list
from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.command_line import batch_size, positive_int, seed
from culturespa.errors import CulturespaError

DEMO_CONFIG = "demo"
"""The loop config the demo runs (`recipes/loop/demo.yaml`): its model, templates, ways,
countries and stages (evaluate, report) are the demo's defaults; the flags override them."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="evaluate a model (default: SmolLM2-135M-Instruct) per country, print the table, plot",
        description=(
            "Run the WVS tasks (all 259 items; by default the log-likelihood way of asking) for "
            "some templates and countries through lm-eval, then write the lm-eval results with "
            "sample logs, the paper-style table (Markdown, CSV), a leaderboard and plots into one "
            "output folder."
        ),
    )
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (SmolLM2-135M-Instruct from PyPI), an HF id or a local folder",
    )
    parser.add_argument(
        "--templates",
        default=None,
        help="comma-separated templates or 'all' (default: the demo config's, "
        "culture_unaware,culture_aware)",
    )
    parser.add_argument(
        "--countries",
        default=None,
        help="ISO-3 codes, 'paper' or 'all' (every country of the survey: 19 shipped, or "
        "those of --survey; default: the demo config's, USA,CHN,NGA,DEU,BRA)",
    )
    parser.add_argument(
        "--ways",
        type=way_list,
        default=None,
        help="comma-separated ways of asking: loglik (log-likelihood of each option number), rev "
        "(the same, options listed in reverse), gen (one sampled reply, the paper's way), dist "
        "(the model states the share choosing each option), perm (log-likelihoods pooled over every "
        "cyclic order of the options: position removed), cal (calibrated on a content-free "
        "prompt), or 'all' (default: the demo config's, loglik). With "
        "loglik and rev the report adds order consistency; with two ways or more, the agreement "
        "between them. gen and dist generate up to 256 tokens per item: slow on a CPU, use "
        "--limit",
    )
    parser.add_argument(
        "-o", "--output", default=None, help="output folder (default: runs/demo-<date>-<time>)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder culturespa did not make: its own file names are "
        "replaced, no other file is touched",
    )
    parser.add_argument(
        "--batch-size",
        type=batch_size,
        default=16,
        help="lm-eval batch size or 'auto' (default: %(default)s)",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="only the first N items per task (a quick check; not comparable)",
    )
    parser.add_argument("--seed", type=seed, default=42, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--backend",
        default="culturespa-hf",
        choices=["culturespa-hf", "hf"],
        help="lm-eval model: hf with a shared-prefix KV cache (same scores, several times faster "
        "on CPU), or lm-eval's plain hf (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: the cores not busy now; on a shared CPU one thread per "
        "free core is far faster than threads that wait for each other)",
    )
    add_survey_option(parser)
    parser.set_defaults(func=run)


def parse_templates(spec: str) -> tuple[str, ...]:
    """'culture_unaware,culture_aware' or 'all' -> template names (validated)."""
    from culturespa.prompts.templates import TEMPLATES, get_template

    if spec.strip() == "all":
        return tuple(TEMPLATES)
    names = tuple(dict.fromkeys(get_template(n.strip()).name for n in spec.split(",") if n.strip()))
    if not names:
        raise CulturespaError("no template given; e.g. --templates culture_unaware,culture_aware")
    return names


def task_groups(templates: tuple[str, ...], ways: tuple[str, ...]) -> list[str]:
    """The task groups of every way of asking and template, ways first (wvs_culture_aware)."""
    from culturespa.prompts.task_names import group_name

    return [group_name(w, t) for w in ways for t in templates]


def _ways_and_templates(groups: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from culturespa.prompts.task_names import parse_task_name

    parsed = [parse_task_name(g) for g in groups]
    ways = tuple(dict.fromkeys(p.way for p in parsed))
    return ways, tuple(dict.fromkeys(p.template for p in parsed))


def demo_config(args: argparse.Namespace, output: str, threads: int):
    """The demo loop config with the flags applied."""
    import dataclasses

    from culturespa.loop.config import load_loop_config

    overrides = {
        "output_dir": output, "model": args.model, "countries": args.countries,
        "eval_batch_size": args.batch_size, "eval_limit": args.limit, "seed": args.seed,
        "eval_backend": args.backend, "threads": threads,
        "survey": str(args.survey) if args.survey else None,
    }  # fmt: skip
    config = load_loop_config(DEMO_CONFIG, overrides)
    ways, templates = _ways_and_templates(config.eval_groups)
    groups = task_groups(
        parse_templates(args.templates) if args.templates else templates, args.ways or ways
    )
    return config if groups == config.eval_groups else dataclasses.replace(config, eval_task=groups)


def run(args: argparse.Namespace) -> int:
    from culturespa.loop.main import run_loop
    from culturespa.output_folder import OVERWRITE_HINT
    from culturespa.survey.countries import parse_countries
    from culturespa.text_cells import terminal_text

    use_survey_option(args)
    if args.templates:
        parse_templates(args.templates)
    if args.countries:
        parse_countries(args.countries)
    output = args.output or time.strftime("runs/demo-%Y%m%d-%H%M%S")
    from culturespa.loop.commands import free_cores

    threads = args.threads or free_cores()
    config = demo_config(args, output, threads)
    ways, templates = _ways_and_templates(config.eval_groups)
    print(
        terminal_text(
            f"culturespa demo: model {config.model}, templates {', '.join(templates)}, countries "
            f"{', '.join(config.countries)}, ways {', '.join(ways)}, {threads} CPU thread(s)"
            + (f", first {config.eval_limit} items" if config.eval_limit else "")
        )
    )
    loop = run_loop(config, overwrite=args.overwrite, hint=OVERWRITE_HINT, what="output folder")
    print_demo_summary(loop)
    return 0


def print_demo_summary(loop) -> None:
    """The demo's terminal summary: the paper's table, then what the report found."""
    from culturespa.report.comparison import comparison_text
    from culturespa.text_cells import terminal_text

    report = loop.report_built
    print(
        "\nCultural alignment (the paper's score x100; coverage = items answered with one of "
        "their options; the Reference rows are answer rules scored from the survey alone, on "
        "the same items)\n"
    )
    print(comparison_text(report.rows))
    for steer in report.steerability:
        if steer.average is not None:
            mean, low, high = (100 * v for v in steer.average)
            closer = sum(s.closer for s in steer.countries) / len(steer.countries)
            away = sum(s.away for s in steer.countries) / len(steer.countries)
            print(
                f"\npersona effect ({terminal_text(steer.name)}): culture-aware minus culture-unaware "
                f"{mean:+.2f} [{low:+.2f}, {high:+.2f}] over the paper's countries; answers "
                f"moved closer to the majority on {100 * closer:.1f}% of items, away on "
                f"{100 * away:.1f}%"
            )
    for order in report.order_consistency:
        if order.average is not None:
            avg = order.average
            print(
                f"\norder consistency ({terminal_text(order.name)}): the same option forward and "
                "reversed on "
                f"{100 * avg.same:.1f}% of items; alignment forward minus reversed "
                f"{100 * avg.delta:+.2f} [{100 * avg.delta_low:+.2f}, {100 * avg.delta_high:+.2f}]"
            )
    if report.agreement:
        print("\nagreement between ways of asking (same option, share of items):")
        for a in report.agreement:
            print(
                f"  {terminal_text(a.model)} | {a.template}: {a.first} vs {a.second} "
                f"{100 * a.same:.1f}% of {a.n_items}"
            )
    for method, r in report.correlations.items():
        print(
            terminal_text(
                f"relations between cultures, model vs survey similarity: r = {r} ({method})"
            )
        )
    if report.notes:
        print("\nnotes:\n" + "\n".join(f"  - {terminal_text(m)}" for m in report.notes.messages))
    timings = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in loop.timings.records.items())
    print(f"\ntook: {timings}")
    output = loop.layout.report
    page = (output / "index.html").resolve()
    print(terminal_text(f"results, tables and plots: {output.resolve()}"))
    print(terminal_text(f"leaderboard page (open it in a browser): {page}"))
