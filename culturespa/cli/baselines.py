"""`culturespa baselines`: what answer rules that need no model score, per country and AVG."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from culturespa.cli.survey import add_survey_option, use_survey_option
from culturespa.scoring.baselines import RULES, culture_specific_items, reference_average
from culturespa.scoring.metric_names import REFERENCE_METRICS
from culturespa.text_cells import csv_text as _csv_lines
from culturespa.text_cells import json_text

EPILOG = """rules:
""" + "\n".join(f"  {rule.name:<16} {rule.meaning}" for rule in RULES.values())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baselines",
        help="reference scores of answer rules that need no model (random, middle, consensus...)",
        description=(
            "Score answer rules computed from the survey alone, on the same items and with the "
            "same skipping rules as models: the exact expected score of each rule per country "
            "and the AVG over the paper's 18 countries, for every metric. A model row means "
            "something only next to these."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--country",
        "--countries",
        dest="countries",
        default="paper",
        help="ISO-3 codes separated by commas, 'paper' (the 18, default) or 'all' (every "
        "country of the survey: 19 shipped)",
    )
    parser.add_argument(
        "--metric",
        default="alignment",
        choices=REFERENCE_METRICS,
        help="metric of the printed table (JSON and CSV hold all; default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write every score as JSON to this file")
    parser.add_argument("--csv", type=Path, help="also write every score as CSV to this file")
    add_survey_option(parser)
    parser.set_defaults(func=run)


def records(countries: tuple[str, ...]) -> list[dict]:
    """One record per rule: per country and AVG, every metric (0..1), with coverage."""
    from culturespa.scoring.baselines import reference_table

    table = reference_table(countries)
    out = []
    for name, by_country in table.items():
        out.append(
            {
                "rule": name,
                "label": RULES[name].label,
                "meaning": RULES[name].meaning,
                "average": {m: _none(reference_average(by_country, m)) for m in REFERENCE_METRICS},
                "countries": {
                    cc: {
                        **{m: _none(s.scores[m]) for m in REFERENCE_METRICS},
                        "coverage": _none(s.coverage),
                        "n_items": s.n_items,
                    }
                    for cc, s in by_country.items()
                },
            }
        )
    return out


def _none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_table(rows: list[dict], countries: tuple[str, ...], metric: str) -> str:
    """Rules by countries and AVG, x100 to one decimal."""
    from culturespa.survey.countries import PAPER_COUNTRIES

    show_avg = any(cc in PAPER_COUNTRIES for cc in countries)
    head = ["rule", *countries, *(["AVG"] if show_avg else [])]
    body = []
    for row in rows:
        line = [row["label"], *(_pct(row["countries"][cc][metric]) for cc in countries)]
        if show_avg:
            line.append(_pct(row["average"][metric]))
        body.append(line)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = lambda line: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
    )
    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body)])


def csv_text(rows: list[dict]) -> str:
    """Every rule, country and metric as CSV (0..1), one line per rule and country, then AVG."""
    lines = []
    for row in rows:
        for cc, cell in row["countries"].items():
            lines.append(
                [
                    row["rule"],
                    cc,
                    *(cell[m] for m in REFERENCE_METRICS),
                    cell["coverage"],
                    cell["n_items"],
                ]
            )
        lines.append([row["rule"], "AVG", *(row["average"][m] for m in REFERENCE_METRICS), "", ""])
    return _csv_lines(["rule", "country", *REFERENCE_METRICS, "coverage", "n_items"], lines)


def run(args: argparse.Namespace) -> int:
    from culturespa.atomic import check_output_file, write_text_atomic
    from culturespa.survey.countries import parse_countries

    use_survey_option(args)
    countries = parse_countries(args.countries)
    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path:
            check_output_file(path, flag)
    rows = records(countries)
    print(f"Reference rows: {args.metric} x100 of answer rules that need no model\n")
    print(format_table(rows, countries, args.metric))
    specific = {cc: len(culture_specific_items(cc)) for cc in countries}
    print(
        "\nculture-specific items (majority differs from the 18 countries' consensus): "
        + ", ".join(f"{cc} {n}" for cc, n in specific.items())
    )
    if args.json:
        payload = {
            "metrics": list(REFERENCE_METRICS),
            "rules": rows,
            "culture_specific_items": specific,
        }
        write_text_atomic(args.json, json_text(payload))
    if args.csv:
        write_text_atomic(args.csv, csv_text(rows))
    return 0
