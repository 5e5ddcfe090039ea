"""`culturespa demo`: the main job, a real model's cultural alignment per country in minutes."""

from __future__ import annotations

import argparse
import math
import os
import time

from culturespa.atomic import check_output_dir
from culturespa.cli.parsing import way_list
from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.command_line import batch_size, positive_int, seed


def register(subparsers: argparse._SubParsersAction) -> None:
    from culturespa.evaluation.demo import DEMO_TEMPLATES, DEMO_WAYS
    from culturespa.survey.countries import DEMO_COUNTRIES

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
        default=",".join(DEMO_TEMPLATES),
        help="comma-separated templates or 'all' (default: %(default)s)",
    )
    parser.add_argument(
        "--countries",
        default=",".join(DEMO_COUNTRIES),
        help="ISO-3 codes, 'paper' or 'all' (every country of the survey: 19 shipped, or "
        "those of --survey; default: %(default)s)",
    )
    parser.add_argument(
        "--ways",
        type=way_list,
        default=DEMO_WAYS,
        help="comma-separated ways of asking: loglik (log-likelihood of each option number), rev "
        "(the same, options listed in reverse), gen (one sampled reply, the paper's way), dist "
        "(the model states the share choosing each option), perm (log-likelihoods pooled over every "
        "cyclic order of the options: position removed), cal (calibrated on a content-free "
        "prompt), or 'all' (default: loglik). With "
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


def _cpu_times(stat: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from Linux's /proc/stat; None elsewhere."""
    try:
        with open(stat, encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(interval: float = 0.5, stat: str = "/proc/stat") -> float | None:
    """Cores in use over the next `interval` seconds (Linux), or None where unknown."""
    before = _cpu_times(stat)
    if before is None:
        return None
    time.sleep(interval)
    after = _cpu_times(stat)
    if after is None or after[1] <= before[1]:
        return None
    cores = os.cpu_count() or 1
    return cores * (after[0] - before[0]) / (after[1] - before[1])


def free_cores() -> int:
    """CPU cores not busy right now, at least 1.

    Measured over half a second from /proc/stat where there is one: the 1-minute load average
    still counts work that has just ended (the pip install before `make demo`), and picked one
    thread on an idle 2-core machine. Elsewhere, the load average. A core counts as free unless
    more than 70% of it is in use.
    """
    cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return cores
    # A core counts as taken when more than 70% of it is in use: a short job that ran during
    # the measurement (a shell command, the end of an install) leaves the demo both threads.
    return max(1, min(cores, cores - math.floor(busy + 0.3)))


def run(args: argparse.Namespace) -> int:
    from culturespa.evaluation.demo import parse_templates, run_demo
    from culturespa.survey.countries import parse_countries
    from culturespa.text_cells import terminal_text

    use_survey_option(args)
    templates = parse_templates(args.templates)
    countries = parse_countries(args.countries)
    output = args.output or time.strftime("runs/demo-%Y%m%d-%H%M%S")
    check_output_dir(output, "output folder")
    batch = args.batch_size
    import torch

    threads = args.threads or free_cores()
    torch.set_num_threads(threads)
    print(
        terminal_text(
            f"culturespa demo: model {args.model}, templates {', '.join(templates)}, countries "
            f"{', '.join(countries)}, ways {', '.join(args.ways)}, {threads} CPU thread(s)"
            + (f", first {args.limit} items" if args.limit else "")
        )
    )
    result = run_demo(
        output,
        model=args.model,
        templates=templates,
        countries=countries,
        batch_size=batch,
        limit=args.limit,
        seed=args.seed,
        backend=args.backend,
        ways=args.ways,
        overwrite=args.overwrite,
        survey=args.survey,
    )
    print_demo_summary(result)
    return 0


def print_demo_summary(result) -> None:
    """The demo's terminal summary: the paper's table, then what the report found."""
    from culturespa.report.tables import comparison_text
    from culturespa.text_cells import terminal_text

    report = result.report
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
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    print(f"\ntook: {timings}")
    page = (result.output / "index.html").resolve()
    print(terminal_text(f"results, tables and plots: {result.output.resolve()}"))
    print(terminal_text(f"leaderboard page (open it in a browser): {page}"))
