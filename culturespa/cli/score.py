"""`culturespa score`: score reply files in the paper's release format against the survey."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from culturespa.atomic import check_output_file, write_text_atomic
from culturespa.cli.parsing import nonnegative_int
from culturespa.countries import PAPER_COUNTRIES, parse_countries
from culturespa.errors import CulturespaError
from culturespa.replies import parse_replies, read_reply_file
from culturespa.scoring import CountryScore, score_country


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score reply files ([{'Q_id', 'answer'}]) with the paper's alignment score",
        description=(
            "Score WVS reply files in the CultureSPA release format against one, several or all "
            "countries. Prints alignment x100 with coverage and a bootstrap 95%% interval."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, help="reply files (JSON lists)")
    parser.add_argument(
        "--country",
        "--countries",
        dest="countries",
        default="USA",
        help="ISO-3 codes separated by commas, 'paper' (the 18) or 'all' (19); default USA",
    )
    parser.add_argument(
        "--bootstrap", type=nonnegative_int, default=1000, help="bootstrap resamples (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON to this file")
    parser.add_argument("--csv", type=Path, help="also write the scores as CSV to this file")
    parser.set_defaults(func=run)


def _rows(files: list[Path], countries: tuple[str, ...], bootstrap: int, seed: int) -> list[dict]:
    rows = []
    for path in files:
        answers = parse_replies(read_reply_file(path))
        for code in countries:
            score: CountryScore = score_country(answers, code, n_resamples=bootstrap, seed=seed)
            rows.append({"file": str(path), **score.as_dict()})
    return rows


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{100 * value:.2f}"


def format_table(rows: list[dict]) -> str:
    """A fixed-width table, x100 with 2 decimals."""
    header = f"{'file':<40} {'country':<7} {'alignment':>9} {'95% CI':>15} {'coverage':>8} {'n':>9}"
    lines = [header, "-" * len(header)]
    for row in rows:
        name = Path(row["file"]).name
        name = name if len(name) <= 40 else "..." + name[-37:]
        ci = (
            "-"
            if row["ci_low"] != row["ci_low"]
            else f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
        )
        lines.append(
            f"{name:<40} {row['country']:<7} {_fmt(row['alignment']):>9} {ci:>15} "
            f"{_fmt(row['coverage']):>8} {row['n_valid']:>4}/{row['n_items']:<4}"
        )
    return "\n".join(lines)


def _averages(rows: list[dict]) -> list[str]:
    lines = []
    for path in dict.fromkeys(row["file"] for row in rows):
        paper = [
            r["alignment"] for r in rows if r["file"] == path and r["country"] in PAPER_COUNTRIES
        ]
        if len(paper) == len(PAPER_COUNTRIES):
            avg = sum(paper) / len(paper)
            lines.append(f"{Path(path).name}: AVG over the paper's 18 countries = {_fmt(avg)}")
    return lines


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    countries = parse_countries(args.countries)
    outputs = {flag: path for flag, path in (("--json", args.json), ("--csv", args.csv)) if path}
    for flag, path in outputs.items():
        check_output_file(path, flag)
    if args.json and args.csv and args.json.absolute() == args.csv.absolute():
        raise CulturespaError(f"--json and --csv are the same file {args.json}")
    rows = _rows(args.files, countries, args.bootstrap, args.seed)
    print(format_table(rows))
    for line in _averages(rows):
        print(line)
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=2) + "\n")
    if args.csv:
        write_text_atomic(args.csv, _csv_text(rows))
    return 0
