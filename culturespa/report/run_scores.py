"""What every reader of a report's inputs gives and every table reads: a run's scores per WVS task
(`RunScores`, `TaskResult`) and the problems met while reading them (`Notes`).

lm-eval results files (`culturespa.report.results_files`) and the paper's reply files
(`culturespa.report.replies_input`) both become `RunScores`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Notes:
    """Problems met while reading, reported to the user instead of aborting the whole report."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        logger.debug(message)
        self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)


@dataclass
class TaskResult:
    """One WVS task of one run: its aggregated metrics and, when logged, the per-item answers."""

    task: str
    template: str
    way: str  # the way of asking (culturespa.prompts.task_names.WAYS)
    country: str
    metrics: dict[str, float]
    answers: dict[str, int | None] | None = None  # item id -> option number (None: invalid reply)
    logged_ci: tuple[float, float] | None = None  # from the results file's "culturespa" block
    item_metrics: dict[str, dict[str, float]] | None = None  # item id -> per-item metric values

    @property
    def generation(self) -> bool:
        """Sampled replies parsed for their first integer (the paper's way)."""
        return self.way == "gen"


@dataclass
class RunScores:
    """The WVS tasks of one lm-eval results file, with the model they belong to."""

    source: Path
    model: str
    label: str
    date: str
    seed: int | None = None  # lm-eval's config.random_seed: runs that differ by seed are averaged
    tasks: list[TaskResult] = field(default_factory=list)
    base_model: str = ""  # the model without its adapter (lm-eval's `pretrained`)
    adapter_kind: str = "base"  # base (no adapter), joint, or specific (one adapter per country)
    provenance: dict[str, Any] = field(default_factory=dict)  # see provenance.run_provenance
