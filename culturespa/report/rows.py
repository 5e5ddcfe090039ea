"""A report's rows: one model/run and template (or survey answer rule), a score per country."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from culturespa.prompts.templates import TEMPLATES
from culturespa.scoring.baselines import RULES
from culturespa.survey.countries import WAVE7_COUNTRIES, paper_average

WAY_SUFFIXES: dict[str, str] = {
    "loglik": "",
    "rev": ", reversed options",
    "gen": ", generated",
    "dist": ", stated distribution",
    "perm": ", permuted orders",
    "cal": ", calibrated",
}
"""What a row's method adds to the template's label for each way of asking (none for the
default, so that 'Culture-aware (P1)' names the log-likelihood row)."""


@dataclass
class Cell:
    """One country's score in one row (0..1 scale): the mean over the row's runs.

    `runs` holds each run's value (one per seed); `replicates` are bootstrap replicates of the
    mean over runs, drawn on the row's shared item draw (see `culturespa.scoring.ItemDraw`).
    """

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    coverage: float = math.nan
    replicates: np.ndarray | None = None
    source: str = ""
    runs: list[float] = field(default_factory=list)
    out_of_range: int = 0
    specific: float = math.nan  # culture-specific alignment (mean over runs), beside any metric
    n_items: int | None = None  # items of the country's survey the cell was asked (fewest of runs)

    @property
    def n_runs(self) -> int:
        return max(1, len(self.runs))

    @property
    def spread(self) -> float:
        """Run-to-run standard deviation (NaN for a single run)."""
        return float(np.std(self.runs, ddof=1)) if len(self.runs) >= 2 else math.nan


@dataclass
class Row:
    """One model/run and template: a score per country, merged over the runs that hold it."""

    label: str
    template: str
    way: str  # the way of asking (culturespa.prompts.task_names.WAYS); "" for reference rows
    cells: dict[str, Cell] = field(default_factory=dict)
    answers: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    avg: float = math.nan
    avg_low: float = math.nan
    avg_high: float = math.nan
    n_avg: int = 0
    run_averages: list[float] = field(default_factory=list)
    rule: str | None = (
        None  # a reference row's answer rule (culturespa.scoring.baselines); None: a model
    )
    reference_items: int | None = None  # the reference rows' items on this row's countries
    model: str = ""  # the base model of a model row (lm-eval's `pretrained`); "" for references
    adapter_kind: str = ""  # base (no adapter), joint or specific; "" for reference rows

    @property
    def n_items(self) -> int | None:
        """Items asked over the row's countries (None where a cell does not know)."""
        counts = [c.n_items for c in self.cells.values()]
        return None if not counts or None in counts else sum(counts)

    @property
    def fewer_items(self) -> bool:
        """Asked fewer items than its survey reference rows are scored on (not comparable)."""
        known = self.n_items is not None and self.reference_items is not None
        return known and self.n_items < self.reference_items

    @property
    def is_reference(self) -> bool:
        """A survey reference row: an answer rule without a model, never ranked among models."""
        return self.rule is not None

    @property
    def generation(self) -> bool:
        """Sampled replies parsed for their first integer (the paper's way)."""
        return self.way == "gen"

    @property
    def template_label(self) -> str:
        if self.is_reference:
            return RULES[self.rule].label
        return TEMPLATES[self.template].label + WAY_SUFFIXES.get(self.way, f", {self.way}")

    @property
    def method(self) -> str:
        """'SmolLM2-135M-Instruct | Culture-aware (P1)' (other ways than log-likelihood marked)."""
        return f"{self.label} | {self.template_label}"

    @property
    def coverage(self) -> float:
        values = [c.coverage for c in self.cells.values() if not math.isnan(c.coverage)]
        return float(np.mean(values)) if values else math.nan

    @property
    def n_runs(self) -> int:
        return max((c.n_runs for c in self.cells.values()), default=1)

    @property
    def specific_avg(self) -> float:
        """The paper's AVG of the culture-specific alignment (NaN where it is unknown)."""
        return paper_average({cc: c.specific for cc, c in self.cells.items()})

    @property
    def avg_spread(self) -> float:
        """Run-to-run standard deviation of the AVG (NaN for a single run)."""
        return float(np.std(self.run_averages, ddof=1)) if len(self.run_averages) >= 2 else math.nan

    @property
    def out_of_range(self) -> int:
        """Answers, over all countries and runs, that are not one of their item's options."""
        return sum(c.out_of_range for c in self.cells.values())


def countries_in(rows: list[Row]) -> list[str]:
    """The countries any row covers, in the paper's order (MEX last)."""
    present = {cc for row in rows for cc in row.cells}
    return [cc for cc in WAVE7_COUNTRIES if cc in present]
