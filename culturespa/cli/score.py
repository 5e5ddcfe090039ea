"""`culturespa score`: score reply files in the paper's release format against the survey."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturespa.atomic import check_output_file, write_text_atomic
from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.command_line import nonnegative_int, seed
from culturespa.errors import CulturespaError
from culturespa.scoring.bootstrap import percentile_interval
from culturespa.scoring.country_scores import score_countries
from culturespa.scoring.replies import parse_replies, read_reply_file
from culturespa.survey.countries import (
    PAPER_COUNTRIES,
    in_paper_average,
    paper_average,
    parse_countries,
)
from culturespa.text_cells import csv_text, json_text, terminal_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score reply files ([{'Q_id', 'answer'}]) with the paper's alignment score",
        description=(
            "Score WVS reply files in the CultureSPA release format against one, several or all "
            "countries. Prints alignment x100 with coverage and a bootstrap 95% interval, the "
            "score on the culture-specific items, and with --unaware the persona's effect."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, help="reply files (JSON lists)")
    parser.add_argument(
        "--country",
        "--countries",
        dest="countries",
        default="USA",
        help="ISO-3 codes separated by commas, 'paper' (the 18) or 'all' (every country of "
        "the survey: 19 shipped); default USA",
    )
    parser.add_argument(
        "--bootstrap", type=nonnegative_int, default=1000, help="bootstrap resamples (0: none)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="bootstrap seed")
    parser.add_argument(
        "--unaware",
        type=Path,
        default=None,
        metavar="FILE",
        help="culture-unaware replies of the same model: adds how far each file's persona moves "
        "the answers toward each country's majority (steerability, with a paired interval)",
    )
    parser.add_argument("--json", type=Path, help="also write the scores as JSON to this file")
    parser.add_argument("--csv", type=Path, help="also write the scores as CSV to this file")
    add_survey_option(parser)
    parser.set_defaults(func=run)


def _scores(
    files: list[Path], countries: tuple[str, ...], bootstrap: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """Per file and country, the score rows; per file, the AVG over the paper's 18 countries
    (country "AVG": their plain mean, with a paired bootstrap interval; counts summed) when all
    18 were asked for."""
    rows, averages = [], []
    for path in files:
        answers = parse_replies(read_reply_file(path))
        scores, avg_replicates = score_countries(answers, countries, bootstrap, seed)
        rows += [{"file": str(path), **score.as_dict()} for score in scores]
        paper = [s for s in scores if s.country in in_paper_average(countries)]
        if len(paper) == len(PAPER_COUNTRIES):
            lo, hi = percentile_interval(avg_replicates)
            averages.append(
                {
                    "file": str(path),
                    "country": "AVG",
                    "alignment": paper_average({s.country: s.alignment for s in paper}),
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_scored": sum(s.n_scored for s in paper),
                    "n_items": sum(s.n_items for s in paper),
                    "n_out_of_range": sum(s.n_out_of_range for s in paper),
                    "coverage": sum(s.coverage for s in paper) / len(paper),
                }
            )
    return rows, averages


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{100 * value:.2f}"


def _ci(low: float, high: float) -> str:
    return "-" if low != low else f"[{_fmt(low)}, {_fmt(high)}]"


def format_table(rows: list[dict]) -> str:
    """A fixed-width table, x100 with 2 decimals."""
    header = (
        f"{'file':<40} {'country':<7} {'alignment':>9} {'95% CI':>15} {'specific':>8} "
        f"{'coverage':>8} {'out of range':>12} {'scored':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        name = _short_name(row["file"])
        lines.append(
            f"{name:<40} {row['country']:<7} {_fmt(row['alignment']):>9} "
            f"{_ci(row['ci_low'], row['ci_high']):>15} {_fmt(row['alignment_specific']):>8} "
            f"{_fmt(row['coverage']):>8} {row['n_out_of_range']:>12} "
            f"{row['n_scored']:>4}/{row['n_items']:<4}"
        )
    return "\n".join(lines)


def format_averages(averages: list[dict]) -> list[str]:
    """'FILE: AVG over the paper's 18 countries = 62.36 [59.55, 65.25]' lines."""
    return [
        f"{_short_name(a['file'])}: AVG over the paper's 18 countries = {_fmt(a['alignment'])} "
        f"(95% CI {_ci(a['ci_low'], a['ci_high'])}, countries resampled on shared items)"
        for a in averages
    ]


def steer_rows(
    files: list[Path], unaware: Path, countries: tuple[str, ...], bootstrap: int, seed: int
) -> list[dict]:
    """Per file and country: how the file's persona moved the answers of the unaware file."""
    from culturespa.scoring.steerability import steer_countries

    before = parse_replies(read_reply_file(unaware))
    rows = []
    for path in files:
        if path.resolve() == unaware.resolve():
            continue
        after = parse_replies(read_reply_file(path))
        steers, _ = steer_countries(
            dict.fromkeys(countries, before), dict.fromkeys(countries, after), bootstrap, seed
        )
        rows += [{"file": str(path), **s.as_dict()} for s in steers]
    return rows


def format_steer(rows: list[dict]) -> str:
    header = f"{'file':<40} {'country':<7} {'closer':>7} {'away':>6} {'change':>7} {'95% CI':>15}"
    lines = [header, "-" * len(header)]
    for row in rows:
        name = _short_name(row["file"])
        low, high = row["delta_ci"]
        lines.append(
            f"{name:<40} {row['country']:<7} {_fmt(row['closer']):>7} {_fmt(row['away']):>6} "
            f"{_fmt(row['delta']):>7} {_ci(low, high):>15}"
        )
    return "\n".join(lines)


def _short_name(path: str) -> str:
    """A file's name for a terminal table: control characters removed, at most 40 characters."""
    name = terminal_text(Path(path).name)
    return name if len(name) <= 40 else "..." + name[-37:]


def _csv_text(rows: list[dict]) -> str:
    head = list(rows[0])
    return csv_text(head, [[row.get(key) for key in head] for row in rows])


def run(args: argparse.Namespace) -> int:
    use_survey_option(args)
    countries = parse_countries(args.countries)
    outputs = {flag: path for flag, path in (("--json", args.json), ("--csv", args.csv)) if path}
    for flag, path in outputs.items():
        check_output_file(path, flag)
    if args.json and args.csv and args.json.absolute() == args.csv.absolute():
        raise CulturespaError(f"--json and --csv are the same file {args.json}")
    rows, averages = _scores(args.files, countries, args.bootstrap, args.seed)
    steering = (
        steer_rows(args.files, args.unaware, countries, args.bootstrap, args.seed)
        if args.unaware
        else []
    )
    print(format_table(rows))
    for line in format_averages(averages):
        print(line)
    print(
        "specific: the score on the culture-specific items (the country's majority differs from "
        "the 18 countries' consensus); coverage: share of the items with survey data answered "
        "with one of their options; out of range: numbers the paper's parser accepts (0..10) "
        "that are no option of the item (scored, as in the paper)"
    )
    if steering:
        print(f"\nsteerability against {_short_name(args.unaware)} (x100: shares of the items both "
              "answered, change in alignment with a paired 95% interval)\n")  # fmt: skip
        print(format_steer(steering))
    if args.json:
        records = rows + averages
        if steering:
            records += [{"kind": "steerability", **row} for row in steering]
        write_text_atomic(args.json, json_text(records))
    if args.csv:
        write_text_atomic(args.csv, _csv_text(rows + averages))
    return 0
