"""Analyses across rows of a report (no drawing here): steerability of the persona."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from culturespa.report.tables import Row
from culturespa.steerability import Steer, steer_countries

UNAWARE, AWARE = "culture_unaware", "culture_aware"


@dataclass
class Steerability:
    """How the culture-aware persona moves one model's answers, per country and on average."""

    model: str
    generation: bool
    countries: list[Steer]
    average: tuple[float, float, float] | None  # mean change over the paper's countries, CI

    @property
    def name(self) -> str:
        return f"{self.model} | {'generated' if self.generation else 'log-likelihood'}"

    def as_dict(self) -> dict:
        avg = self.average
        return {
            "model": self.model,
            "generation": self.generation,
            "average_delta": None if avg is None else _none(avg[0]),
            "average_delta_ci": None if avg is None else [_none(avg[1]), _none(avg[2])],
            "countries": {
                s.country: {
                    k: _none(v) if isinstance(v, float) else v for k, v in s.as_dict().items()
                }
                for s in self.countries
            },
        }


def _none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def steerability(rows: list[Row], seed: int = 0, n_resamples: int = 1000) -> list[Steerability]:
    """For every model (and way of asking) with culture-unaware and culture-aware rows that hold
    per-item answers: the persona's effect per country, on one shared draw of items."""
    by_key = {(r.label, r.template, r.generation): r for r in rows if not r.is_reference}
    out = []
    for (label, template, generation), aware in by_key.items():
        if template != AWARE:
            continue
        unaware = by_key.get((label, UNAWARE, generation))
        if unaware is None or not unaware.answers or not aware.answers:
            continue
        results, average = steer_countries(unaware.answers, aware.answers, n_resamples, seed)
        if results:
            out.append(Steerability(label, generation, results, average))
    return out


def _x100(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def steerability_markdown(analyses: list[Steerability]) -> str:
    """One table per model: per country the shares moved closer / away and the change."""
    parts = []
    for a in analyses:
        lines = [
            f"### {a.name}\n",
            "| country | items | closer | away | unchanged | change in alignment [95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for s in a.countries:
            lines.append(
                f"| {s.country} | {s.n_items} | {_x100(s.closer)}% | {_x100(s.away)}% | "
                f"{_x100(s.unchanged)}% | {_x100(s.delta)} [{_x100(s.delta_low)}, "
                f"{_x100(s.delta_high)}] |"
            )
        if a.average is not None:
            mean, low, high = a.average
            lines.append(
                f"| AVG (paper's countries) | | | | | {_x100(mean)} [{_x100(low)}, {_x100(high)}] |"
            )
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def steerability_csv(analyses: list[Steerability]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["model", "generation", "country", "items", "closer", "away", "unchanged", "delta",
         "delta_ci_low", "delta_ci_high"]
    )  # fmt: skip
    for a in analyses:
        for s in a.countries:
            writer.writerow(
                [a.model, int(a.generation), s.country, s.n_items, *(
                    "" if math.isnan(v) else f"{100 * v:.2f}"
                    for v in (s.closer, s.away, s.unchanged, s.delta, s.delta_low, s.delta_high)
                )]
            )  # fmt: skip
    return out.getvalue()
