"""How much of a model's forward answers is its favourite place: the position-led share.

The calibrated tasks (`wvs_cal_*`) ask every item twice, as the paper does and with a content-free
question ("N/A") numbered the same way. Their `position_led` metric is the share of items whose
forward answer is the option listed at the place the content-free prompt favours: the answer a
model would give without reading the question. A share near 1 says the forward score measures
where options are listed; compare it with the permuted and calibrated rows of the same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from culturespa.prompts.templates import TEMPLATES
from culturespa.report.run_scores import RunScores

METRIC = "position_led"


@dataclass
class PositionLed:
    """One model and template: the position-led share per country (mean over its runs)."""

    model: str
    template: str
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Unweighted mean over the countries that have a share."""
        values = [v for v in self.shares.values() if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "template": self.template,
            "mean": None if math.isnan(self.mean) else self.mean,
            "countries": {cc: (None if math.isnan(v) else v) for cc, v in self.shares.items()},
        }


def position_led(runs: Sequence[RunScores]) -> list[PositionLed]:
    """The position-led shares of every model and template with calibrated tasks."""
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in runs:
        for task in run.tasks:
            value = task.metrics.get(METRIC)
            if task.way != "cal" or value is None:
                continue
            by_country = values.setdefault((run.label, task.template), {})
            by_country.setdefault(task.country, []).append(float(value))
    return [
        PositionLed(model, template, {cc: float(np.mean(v)) for cc, v in countries.items()})
        for (model, template), countries in values.items()
    ]


def position_led_markdown(rows: Sequence[PositionLed]) -> str:
    """One line per model and template: the mean share and the share per country (x100)."""
    countries = sorted({cc for row in rows for cc in row.shares})
    lines = [
        "| model | template | mean | " + " | ".join(countries) + " |",
        "| --- | --- | ---: |" + " ---: |" * len(countries),
    ]
    for row in rows:
        cells = [_x100(row.shares.get(cc, math.nan)) for cc in countries]
        label = TEMPLATES[row.template].label
        lines.append(f"| {row.model} | {label} | {_x100(row.mean)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _x100(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def position_views(entries: object) -> list[dict[str, str]]:
    """The page's position-led lines from `leaderboard.json` (malformed entries skipped)."""
    lines = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("countries"), dict):
            continue
        template = str(entry.get("template") or "")
        shares = {
            str(cc): _x100(float(v)) if isinstance(v, (int, float)) else "–"
            for cc, v in entry["countries"].items()
        }
        mean = entry.get("mean")
        lines.append(
            {
                "model": str(entry.get("model", "?")),
                "template": TEMPLATES[template].label if template in TEMPLATES else template,
                "mean": _x100(float(mean)) if isinstance(mean, (int, float)) else "–",
                "countries": ", ".join(f"{cc} {v}" for cc, v in shares.items()),
            }
        )
    return lines
