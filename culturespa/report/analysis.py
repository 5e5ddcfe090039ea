"""Analyses across rows of a report (no drawing here): relations between cultures, steerability.

Everything here goes into `leaderboard.json` whether plots are drawn or not; `plots` only draws it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from culturespa.prompts.templates import TEMPLATES
from culturespa.report.tables import Row
from culturespa.scoring.steerability import Steer, steer_countries
from culturespa.survey.countries import ALL_COUNTRIES
from culturespa.survey.similarity import answer_similarity, similarity_matrix

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


def paired_change(
    before: Row, after: Row, seed: int = 0, n_resamples: int = 1000
) -> Steerability | None:
    """How `after` moves the per-item answers of `before` (e.g. an adapter against its base
    model, both culture-aware): per country the shares moved closer to the survey majority and
    away from it, and the change in the paper's score with a paired interval (one draw of items
    for both rows and all countries); None when either row lacks per-item answers."""
    if not before.answers or not after.answers:
        return None
    results, average = steer_countries(before.answers, after.answers, n_resamples, seed)
    if not results:
        return None
    return Steerability(f"{after.method} vs {before.method}", after.generation, results, average)


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


# Relations between cultures -----------------------------------------------------------------

MIN_RELATION_COUNTRIES = 3
"""Countries with per-item answers a row needs for its relations between cultures."""


def relation_matrices(row: Row) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """Country similarity implied by the model's answers, the survey's, and their correlation."""
    countries = [cc for cc in ALL_COUNTRIES if cc in row.answers]
    model = np.array(
        [[answer_similarity(row.answers[a], row.answers[b]) for b in countries] for a in countries]
    )
    survey = np.array(similarity_matrix(tuple(countries)))
    upper = np.triu_indices(len(countries), k=1)
    x, y = model[upper], survey[upper]
    keep = np.isfinite(x) & np.isfinite(y)
    r = (
        float(np.corrcoef(x[keep], y[keep])[0, 1])
        if keep.sum() > 2 and np.std(x[keep]) > 0
        else math.nan
    )
    return countries, model, survey, r


def relation_records(rows: list[Row]) -> dict[str, dict]:
    """The culture-relations matrices of every persona row with answers for 3+ countries (JSON)."""

    def plain(matrix: np.ndarray) -> list[list[float | None]]:
        return [[round(float(v), 2) if np.isfinite(v) else None for v in line] for line in matrix]

    records = {}
    for row in rows:
        template = TEMPLATES.get(row.template)
        if template is None or not template.country_dependent:
            continue
        if len(row.answers) < MIN_RELATION_COUNTRIES:
            continue
        countries, model, survey, r = relation_matrices(row)
        records[row.method] = {
            "countries": countries,
            "model": plain(model),
            "survey": plain(survey),
            "r": None if math.isnan(r) else round(r, 4),
        }
    return records
