"""What a damaged results file or sample log looks like: fields of the wrong shape, metrics no
run can have. Each problem is named with its field, so the reader can report file, line and field
in one line instead of failing deep inside a table or a plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.scoring.answers import MAX_VALID_ANSWER
from culturespa.scoring.metric_names import COUNT_METRICS, PAPER_SCORE_METRICS

_MAX_COUNT = 1e9
"""The largest count a run can have (COUNT_METRICS are >= 0; every other metric is a share or a
score in 0..1, except the paper's score, PAPER_SCORE_METRICS: below)."""

# The paper's 1 - ||a - m|| / ||n - 1|| keeps out-of-range answers (0..10, the parser's range):
# one item of two options (n - 1 = 1) answered 10 against a majority of 0 gives 1 - 10 = -9, the
# lowest value any run can have.
PAPER_SCORE_FLOOR = 1.0 - MAX_VALID_ANSWER


class DamagedSample(ValueError):
    """A sample log line whose field has the wrong shape; the message names the field."""


def metric_problem(metric: str, value: float) -> str | None:
    """Why a metric's value cannot be real (None when it can): a share or score outside 0..1,
    a negative or huge count, Infinity. NaN (no value) is the caller's to drop."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return f"expected a finite number, got {value!r}"
    if metric in COUNT_METRICS:
        return None if 0 <= value <= _MAX_COUNT else f"expected a count >= 0, got {value!r}"
    if metric in PAPER_SCORE_METRICS:
        if PAPER_SCORE_FLOOR <= value <= 1:
            return None
        return f"expected a value in {PAPER_SCORE_FLOOR:g}..1, got {value!r}"
    return None if 0 <= value <= 1 else f"expected a value in 0..1, got {value!r}"


def check_sample_shape(responses: Any, doc: dict[str, Any]) -> None:
    """Raise DamagedSample when the responses or the doc's option lists have the wrong shape."""
    if not isinstance(responses, list):
        field_name = "filtered_resps" if responses is not None else "resps"
        raise DamagedSample(f"field {field_name!r} is {show(responses)}, expected a list")
    for key in ("options", "shown", "texts"):
        value = doc.get(key)
        if value is not None and not isinstance(value, list):
            raise DamagedSample(f"field 'doc.{key}' is {show(value)}, expected a list")
    for code in doc.get("options") or []:
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= MAX_VALID_ANSWER:
            raise DamagedSample(
                f"field 'doc.options' holds {show(code)}, expected option numbers "
                f"0..{MAX_VALID_ANSWER}"
            )
    for text in doc.get("texts") or []:
        if not isinstance(text, str):
            raise DamagedSample(f"field 'doc.texts' holds {show(text)}, expected text")


def check_task_config(path: Path, name: str, config: Any) -> None:
    """A task's `dataset_kwargs` that names its template, way or country by anything but text
    is damage, reported with the file and field (not read as another task)."""
    kwargs = config.get("dataset_kwargs") if isinstance(config, dict) else None
    for key in ("template", "way", "country"):
        value = kwargs.get(key) if isinstance(kwargs, dict) else None
        if value is not None and not isinstance(value, str):
            raise CulturespaError(
                f"{path}: configs.{name}.dataset_kwargs.{key} is {show(value)}, expected text; "
                "the file is damaged"
            )
