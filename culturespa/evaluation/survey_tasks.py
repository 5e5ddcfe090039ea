"""The lm-eval tasks of a survey folder for one run: built into a temporary task folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def survey_task_folder(survey: str | Path | None) -> Iterator[Path | None]:
    """A task folder of every country of `survey` (`culturespa tasks build`), removed after the
    run; None for the shipped survey (the shipped task folder). Each task names the survey
    folder in `dataset_kwargs.survey`, which lm-eval keeps in the results file."""
    if survey is None:
        yield None
        return
    from culturespa_tasks.generate import build_task_folder

    with tempfile.TemporaryDirectory(prefix="culturespa-tasks-") as folder:
        build_task_folder(survey, Path(folder) / "tasks")
        yield Path(folder) / "tasks"
