"""`culturespa report RESULTS...`: leaderboard, paper-style table and plots from lm-eval results."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturespa.cli.parsing import way_list
from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.command_line import seed
from culturespa.report.replies_input import DEFAULT_REPLIES_LABEL
from culturespa.run_files import RESULTS_GLOB
from culturespa.scoring.metric_names import SCORE_METRICS

EPILOG = """examples:
  culturespa report runs/eval -o runs/report
  culturespa report runs/base runs/culturespa --compare "Base | Culture-aware" "joint | Culture-aware"
  culturespa report runs/eval tests/data/reference_generations -o runs/report   # + the paper's replies
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="leaderboard, comparison table and plots from lm-eval results files",
        description=(
            f"Read lm-eval results files ({RESULTS_GLOB}, found recursively in folders) and their "
            "sample logs, from any number of runs and models, and reply files in the paper's "
            "release format (wvs_result_*.json), and write a ranked leaderboard (a web page, "
            "index.html, and Markdown, CSV, JSON), the paper's comparison table and PNG plots."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "results",
        nargs="+",
        help=f"{RESULTS_GLOB} files, reply files (wvs_result_*.json) or folders holding them",
    )
    parser.add_argument(
        "-o", "--output", default="runs/report", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--metric",
        default="alignment",
        choices=SCORE_METRICS,
        help="score to rank by (default: the paper's %(default)s)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("ROW_A", "ROW_B"),
        help="two rows for the side-by-side bars (a part of 'model | template')",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="bootstrap seed (default: %(default)s)"
    )
    parser.add_argument(
        "--countries",
        "--country",
        dest="countries",
        default=None,
        help="countries to score culture-unaware reply files against: ISO-3 codes, 'paper' or "
        "'all' (of the survey the results name, or of --survey; default: the countries the other "
        "inputs cover, else the paper's 18)",
    )
    parser.add_argument(
        "--replies-label",
        default=DEFAULT_REPLIES_LABEL,
        help="model name of rows from reply files (default: %(default)r)",
    )
    parser.add_argument(
        "--ways",
        type=way_list,
        default=None,
        help="keep only these ways of asking, comma-separated (loglik, rev, gen, dist, perm, "
        "cal; default: every way found)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables only (no PNGs)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder culturespa did not make: its own file names are "
        "replaced, no other file is touched",
    )
    add_survey_option(
        parser,
        "the survey folder the results were made from (default: the one their tasks name, "
        "`dataset_kwargs.survey`, else the shipped survey); needed for reply files of its "
        "countries, or when that folder has moved",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from culturespa.report.comparison import comparison_text
    from culturespa.report.survey_of_run import survey_of_report
    from culturespa.report.writer import ReportOptions, build_report
    from culturespa.survey.countries import parse_countries
    from culturespa.text_cells import terminal_text

    use_survey_option(args)
    with survey_of_report(args.results):  # --countries are of the survey the results name
        options = ReportOptions(
            metric=args.metric,
            compare=tuple(args.compare) if args.compare else None,
            seed=args.seed,
            plot=not args.no_plots,
            countries=parse_countries(args.countries) if args.countries else None,
            replies_label=args.replies_label,
            ways=args.ways,
            overwrite=args.overwrite,
        )
        report = build_report(args.results, args.output, options)
    print(comparison_text(report.rows))
    for method, r in report.correlations.items():
        print(terminal_text(f"culture relations, model vs survey similarity: r = {r} ({method})"))
    if report.notes:
        print(f"\n{len(report.notes.messages)} note(s):")
        for message in report.notes.messages:
            print(f"  - {terminal_text(message)}")
    output = terminal_text(args.output)
    print(f"\nwrote {len(report.files)} files to {output}/ (leaderboard.md, plots/...)")
    print(terminal_text(f"leaderboard page: {Path(args.output) / 'index.html'}"))
    return 0
