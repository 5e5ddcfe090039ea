"""The survey a report reads: the survey folder its results files name, one for all of them.

A task folder built by `culturespa tasks build --survey DIR` (and `eval`/`demo --survey DIR`,
which build one for the run) names the survey folder in every task's `dataset_kwargs.survey`, and
the SHA-256 of its content in `dataset_kwargs.survey_sha256`; lm-eval copies each task's config
into its results file. The survey is recognised by that content: a copy of the folder is the
same survey, a folder rebuilt with other answers at the same path is not (results files older
than the record are matched by path). A report scores those runs (their
reference rows, the paper's score from the sample logs, the culture-specific items, relations
between cultures) against that folder; results of the shipped task folder name none and read
the shipped survey. Runs of different surveys are never mixed in one report: that is refused
with one line, since their reference rows and majorities are not the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturespa.bounded_input import BoundExceeded, loads_bounded
from culturespa.errors import CulturespaError
from culturespa.fields import show

logger = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RunSurvey:
    """The survey one results file was made from, as its tasks' `dataset_kwargs` name it."""

    folder: Path | None
    """The survey folder's absolute path when the tasks were built; None: the shipped survey."""
    sha256: str | None
    """SHA-256 of the folder's content then (`survey_content_sha256`); None: the shipped
    survey, or a results file older than the record (matched by path, as then)."""
    countries: frozenset[str]
    """The countries its WVS tasks ask about."""


def _recorded_sha256(kwargs: Any, path: Path, name: str) -> str | None:
    value = kwargs.get("survey_sha256") if isinstance(kwargs, dict) else None
    if value is not None and not (isinstance(value, str) and _SHA256.fullmatch(value)):
        raise CulturespaError(
            f"{path}: configs.{name}.dataset_kwargs.survey_sha256 is {show(value)}, not a "
            "SHA-256; the file is damaged"
        )
    return value


def recorded_survey(data: dict[str, Any], path: Path) -> RunSurvey:
    """The survey the WVS tasks of one results file read. Two surveys in one file is an error
    naming it."""
    from culturespa.report.results_files import task_identity

    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    results = data.get("results") if isinstance(data.get("results"), dict) else {}
    surveys: set[tuple[Path | None, str | None]] = set()
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
        sha256 = _recorded_sha256(kwargs, path, name) if survey else None
        surveys.add((Path(survey).resolve() if survey else None, sha256))
    if len(surveys) > 1:
        named = ", ".join(survey_name(f) for f in sorted({f for f, _ in surveys}, key=str))
        raise CulturespaError(f"{path}: its tasks read different surveys ({named})")
    folder, sha256 = next(iter(surveys), (None, None))
    return RunSurvey(folder, sha256, frozenset(countries))


RunSurveys = dict[Path, RunSurvey]
"""Per results file: the survey it was made from."""


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
    """Per lm-eval results file under `paths` (reply files left out): the survey it was made from."""
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


def _same_surveys(by_file: RunSurveys) -> dict[object, list[tuple[Path, RunSurvey]]]:
    """The results files by survey: by content where they record it (a copy of a folder is the
    same survey), else by path (older files; one of a folder a newer file names joins it)."""
    content_of = {run.folder: run.sha256 for run in by_file.values() if run.sha256}
    groups: dict[object, list[tuple[Path, RunSurvey]]] = {}
    for file, run in by_file.items():
        key = run.sha256 or content_of.get(run.folder) or run.folder
        groups.setdefault(key, []).append((file, run))
    return groups


def _folder_by_content(members: list[tuple[Path, RunSurvey]], given: Path | None) -> Path:
    """The survey folder that holds the content the results files record: `given` (the
    report's --survey) or else a folder they name; a folder of other content is refused."""
    from culturespa.survey.folder import survey_content_sha256

    file, run = next((f, r) for f, r in members if r.sha256)
    if given is not None:
        if survey_content_sha256(given) != run.sha256:
            raise CulturespaError(
                f"{file} was made from {survey_name(run.folder)} (content SHA-256 "
                f"{run.sha256[:12]}), and --survey {given} holds another survey; pass that "
                "survey (or a copy of it), or report those runs separately"
            )
        return given
    changed = None
    for folder in dict.fromkeys(r.folder for _, r in members if r.folder is not None):
        if folder.is_dir():
            try:
                if survey_content_sha256(folder) == run.sha256:
                    return folder
            except CulturespaError:
                pass  # a survey file is gone: not the recorded survey either
            changed = folder
    if changed is not None:
        raise CulturespaError(
            f"{file} was made from survey folder {changed}, which holds another survey now "
            f"(its content SHA-256 is not the recorded {run.sha256[:12]}); pass --survey DIR "
            "with the survey it was made from (or a copy of it)"
        )
    raise CulturespaError(
        f"{file} was made from survey folder {run.folder}, which does not exist any more; "
        "pass --survey DIR with that folder (or a copy of it)"
    )


def choose_report_survey(by_file: RunSurveys, in_use: Path | None) -> Path | None:
    """The survey folder a report of these results files reads (None: the shipped survey).

    The one survey every results file names, recognised by content where they record it (a
    copy passed as `--survey` stands in; a folder rebuilt with other answers is refused), by
    path for older results; `in_use` (the `--survey DIR` of the command, else None) must be that
    survey, or stands in for a folder that no longer exists. Runs of two surveys, or of another
    survey than `in_use`, are refused with one line."""
    groups = _same_surveys(by_file)
    if len(groups) > 1:
        listed = "; ".join(f"{m[0][0]} ({survey_name(m[0][1].folder)})" for m in groups.values())
        raise CulturespaError(
            f"results of different surveys cannot be mixed in one report: {listed}; "
            "report each survey's runs separately"
        )
    given = Path(in_use).resolve() if in_use is not None else None
    if not groups:
        return given  # reply files only: the survey in use
    (members,) = groups.values()
    if any(run.sha256 for _, run in members):
        return _folder_by_content(members, given)
    file, run = members[0]
    recorded = run.folder
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
    for file, run in by_file.items():
        missing = sorted(run.countries - surveyed)
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
        folder = recorded_survey(data, path).folder
    except CulturespaError:
        return None  # the loader reports a damaged file
    return str(folder) if folder is not None else None
