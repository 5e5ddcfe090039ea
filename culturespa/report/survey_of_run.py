"""The survey a report reads: the survey folder its results files name, one for all of them.

A task folder built by `culturespa tasks build --survey DIR` (and `eval`/`demo --survey DIR`,
which build one for the run) names the survey folder in every task's `dataset_kwargs.survey`,
and lm-eval copies each task's config into its results file. A report scores those runs (their
reference rows, the paper's score from the sample logs, the culture-specific items, relations
between cultures) against that folder; results of the shipped task folder name none and read
the shipped survey. Runs of different surveys are never mixed in one report: that is refused
with one line, since their reference rows and majorities are not the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturespa.bounded_input import BoundExceeded, loads_bounded
from culturespa.errors import CulturespaError
from culturespa.fields import show

logger = logging.getLogger(__name__)


def recorded_survey(data: dict[str, Any], path: Path) -> tuple[Path | None, set[str]]:
    """(the survey folder the WVS tasks of one results file read, None for the shipped survey;
    the countries those tasks ask about). Two folders in one file is an error naming it."""
    from culturespa.report.results_files import task_identity

    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    results = data.get("results") if isinstance(data.get("results"), dict) else {}
    folders: set[Path | None] = set()
    countries: set[str] = set()
    for name in results:
        config = configs.get(name)
        identity = task_identity(name, config)
        if identity is None:
            continue
        countries.add(identity.country)
        kwargs = config.get("dataset_kwargs") if isinstance(config, dict) else None
        survey = kwargs.get("survey") if isinstance(kwargs, dict) else None
        if survey is not None and (not isinstance(survey, str) or not survey.strip()):
            raise CulturespaError(
                f"{path}: configs.{name}.dataset_kwargs.survey is {show(survey)}, not the path "
                "of a survey folder; the file is damaged"
            )
        folders.add(Path(survey).resolve() if survey else None)
    if len(folders) > 1:
        named = ", ".join(survey_name(f) for f in sorted(folders, key=str))
        raise CulturespaError(f"{path}: its tasks read different surveys ({named})")
    return next(iter(folders), None), countries


RunSurveys = dict[Path, tuple[Path | None, set[str]]]
"""Per results file: the survey folder it names (None: shipped) and the countries it asks about."""


def survey_name(folder: Path | None) -> str:
    """How messages name a survey: 'survey folder DIR' or 'the shipped survey'."""
    return f"survey folder {folder}" if folder is not None else "the shipped survey"


def _read_results(path: Path) -> dict[str, Any] | None:
    """A results file's JSON object; None for anything unreadable (the loader notes it)."""
    try:
        data = loads_bounded(path.read_text(encoding="utf-8"), allow_nan=True)
    except (OSError, UnicodeDecodeError, ValueError, BoundExceeded):
        return None
    return data if isinstance(data, dict) else None


def surveys_of_results(paths: list[str | Path]) -> RunSurveys:
    """Per lm-eval results file under `paths` (reply files left out): its survey and countries."""
    from culturespa.report.replies_input import split_inputs
    from culturespa.report.results_files import find_results_files
    from culturespa.report.run_scores import Notes

    result_paths, _ = split_inputs(paths)
    found = {}
    for file in find_results_files(result_paths, Notes()) if result_paths else []:
        data = _read_results(file)
        if data is not None:
            found[file] = recorded_survey(data, file)
    return found


def choose_report_survey(by_file: RunSurveys, in_use: Path | None) -> Path | None:
    """The survey folder a report of these results files reads (None: the shipped survey).

    The one survey every results file names; `in_use` (the `--survey DIR` of the command, else
    None) must be that one, or stands in for a named folder that no longer exists. Runs of two
    surveys, or of another survey than `in_use`, are refused with one line."""
    first_file: dict[Path | None, Path] = {}
    for file, (folder, _) in by_file.items():
        first_file.setdefault(folder, file)
    if len(first_file) > 1:
        listed = "; ".join(f"{file} ({survey_name(f)})" for f, file in first_file.items())
        raise CulturespaError(
            f"results of different surveys cannot be mixed in one report: {listed}; "
            "report each survey's runs separately"
        )
    given = Path(in_use).resolve() if in_use is not None else None
    if not first_file:
        return given  # reply files only: the survey in use
    ((recorded, file),) = first_file.items()
    if recorded is not None and not recorded.is_dir():
        if given is None:
            raise CulturespaError(
                f"{file} was made from survey folder {recorded}, which does not exist any more; "
                "pass --survey DIR with that folder (or a copy of it)"
            )
        logger.warning(
            "%s names survey folder %s, which is gone; reading %s", file, recorded, given
        )
        return given
    if given is not None and recorded != given:
        raise CulturespaError(
            f"{file} was made from {survey_name(recorded)}, not from --survey {in_use}; "
            "leave --survey out or report those runs separately"
        )
    return recorded


def check_countries_surveyed(by_file: RunSurveys) -> None:
    """Every country the results files ask about is in the survey in use; else one line."""
    from culturespa.survey.countries import get_country
    from culturespa.survey.folder import survey_label, surveyed_countries

    surveyed = set(surveyed_countries())
    for file, (_, countries) in by_file.items():
        missing = sorted(countries - surveyed)
        if missing:
            code = missing[0]
            raise CulturespaError(
                f"{file}: tasks ask about {code} ({get_country(code).name}), which "
                f"{survey_label()} lacks; its countries: {', '.join(sorted(surveyed))}"
            )


@contextmanager
def survey_of_report(paths: list[str | Path]) -> Iterator[Path | None]:
    """Read the survey of the results under `paths` (`choose_report_survey`, with the survey
    folder in use as `--survey`) while the report is built; then the one in use before."""
    from culturespa.survey.folder import survey_folder, use_survey_folder

    previous = survey_folder()
    by_file = surveys_of_results(paths)
    chosen = choose_report_survey(by_file, previous)
    use_survey_folder(chosen)
    try:
        check_countries_surveyed(by_file)
        yield chosen
    finally:
        use_survey_folder(previous)


def survey_text(data: dict[str, Any], path: Path) -> str | None:
    """The survey folder a results file names, as text for its provenance (None: shipped)."""
    try:
        folder, _ = recorded_survey(data, path)
    except CulturespaError:
        return None  # the loader reports a damaged file
    return str(folder) if folder is not None else None
