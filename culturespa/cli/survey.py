"""`culturespa survey build`: a survey folder for every country of the official WVS wave-7 file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "survey",
        help="build a survey folder (every wave-7 country) from the official WVS data file",
        description=(
            "The World Values Survey's data file is free to download after registration but may "
            "not be redistributed; culturespa ships the 19 countries of the paper's release. "
            "`survey build` turns your copy of the wave-7 cross-national CSV into a survey folder "
            "in the shape of the shipped one (see docs/survey.md)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="read the official wave-7 CSV and write a survey folder",
        description=(
            "Read the WVS wave-7 cross-national CSV (B_COUNTRY_ALPHA, the Q-codes of the 259 "
            "scored items, W_WEIGHT) in one streaming pass and write to --out: the answer shares "
            "per country and item (weighted by W_WEIGHT unless --unweighted), the similarity "
            "between countries, the questionnaire and self-alignment examples, and manifest.json "
            "(source file name and SHA-256, weighting, respondents per country). The folder is "
            "written all or nothing."
        ),
    )
    build.add_argument(
        "--wvs", type=Path, required=True, metavar="FILE", help="the official wave-7 CSV file"
    )
    build.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the survey folder to write"
    )
    build.add_argument(
        "--unweighted",
        action="store_true",
        help="count every respondent once (the paper's shipped shares are unweighted); "
        "default: weight each respondent by W_WEIGHT",
    )
    build.add_argument(
        "--encoding",
        default="utf-8",
        help="the file's text encoding (default: %(default)s; e.g. latin-1 for a re-saved copy)",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from culturespa.survey.build import build_survey_folder

    manifest = build_survey_folder(
        args.wvs,
        args.out,
        weighted=not args.unweighted,
        encoding=args.encoding,
        progress=not args.no_progress,
    )
    countries = manifest["countries"]
    respondents = sum(entry["respondents"] for entry in countries.values())
    print(
        f"wrote {args.out}: {len(countries)} countries, {respondents} respondents, "
        f"{manifest['items_in_file']} items, weighting {manifest['weighting']}"
    )
    print("countries: " + ", ".join(countries))
    return 0


def add_survey_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--survey DIR`: the survey folder a command reads (default: the shipped survey)."""
    parser.add_argument(
        "--survey",
        type=Path,
        metavar="DIR",
        help=help
        or "a survey folder from `culturespa survey build` (default: the shipped survey of "
        "the paper's 19 countries); --country all then means every country in it",
    )


def use_survey_option(args: argparse.Namespace) -> None:
    """Read the survey folder of `--survey` (or the shipped one) from here on; checked at once."""
    from culturespa.survey.folder import use_survey_folder

    use_survey_folder(args.survey)
