"""`culturespa report RESULTS...`: leaderboard, paper-style table and plots from lm-eval results."""

from __future__ import annotations

import argparse

from culturespa.report.loading import RANKABLE_METRICS

EPILOG = """examples:
  culturespa report runs/eval -o runs/report
  culturespa report runs/base runs/culturespa --compare "Base | Culture-aware" "joint | Culture-aware"
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="leaderboard, comparison table and plots from lm-eval results files",
        description=(
            "Read lm-eval results files (results_*.json, found recursively in folders) and their "
            "sample logs, from any number of runs and models, and write a ranked leaderboard "
            "(Markdown, CSV, JSON), the paper's comparison table and PNG plots."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="+", help="results_*.json files or folders holding them")
    parser.add_argument(
        "-o", "--output", default="runs/report", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--metric",
        default="alignment",
        choices=RANKABLE_METRICS,
        help="score to rank by (default: the paper's %(default)s)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("ROW_A", "ROW_B"),
        help="two rows for the side-by-side bars (a part of 'model | template')",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from culturespa.report.tables import comparison_text
    from culturespa.report.writer import build_report

    report = build_report(
        args.results,
        args.output,
        metric=args.metric,
        compare=tuple(args.compare) if args.compare else None,
        seed=args.seed,
        plot=not args.no_plots,
    )
    print(comparison_text(report.rows))
    for method, r in report.correlations.items():
        print(f"culture relations, model vs survey similarity: r = {r} ({method})")
    if report.notes:
        print(f"\n{len(report.notes.messages)} note(s):")
        for message in report.notes.messages:
            print(f"  - {message}")
    print(f"\nwrote {len(report.files)} files to {args.output}/ (leaderboard.md, plots/...)")
    return 0
