"""Analyses across rows of a report (no drawing here): relations between cultures, steerability,
order consistency (forward against reversed options) and agreement between ways of asking.

Everything here goes into `leaderboard.json` whether plots are drawn or not; `plots` only draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from culturespa.prompts.task_names import WAY_LABELS, WAYS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.rows import Row
from culturespa.scoring.agreement import (
    ConsistencyAverage,
    OrderConsistency,
    consistency_countries,
    pooled_agreement,
)
from culturespa.scoring.steerability import Steer, steer_countries
from culturespa.survey.countries import WAVE7_COUNTRIES
from culturespa.survey.similarity import answer_similarity, similarity_matrix
from culturespa.text_cells import csv_text, markdown_cell, markdown_row

UNAWARE, AWARE = "culture_unaware", "culture_aware"


@dataclass
class Steerability:
    """How the culture-aware persona moves one model's answers, per country and on average."""

    model: str
    way: str
    countries: list[Steer]
    average: tuple[float, float, float] | None  # mean change over the paper's countries, CI

    @property
    def generation(self) -> bool:
        return self.way == "gen"

    @property
    def name(self) -> str:
        return f"{self.model} | {'generated' if self.generation else WAY_LABELS[self.way]}"

    def as_dict(self) -> dict:
        avg = self.average
        return {
            "model": self.model,
            "way": self.way,
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
    return round(value, 6) if math.isfinite(value) else None


def steerability(rows: list[Row], seed: int = 0, n_resamples: int = 1000) -> list[Steerability]:
    """For every model (and way of asking) with culture-unaware and culture-aware rows that hold
    per-item answers: the persona's effect per country, on one shared draw of items."""
    by_key = {(r.label, r.template, r.way): r for r in rows if not r.is_reference}
    out = []
    for (label, template, way), aware in by_key.items():
        if template != AWARE:
            continue
        unaware = by_key.get((label, UNAWARE, way))
        if unaware is None or not unaware.answers or not aware.answers:
            continue
        results, average = steer_countries(unaware.answers, aware.answers, n_resamples, seed)
        if results:
            out.append(Steerability(label, way, results, average))
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
    return Steerability(f"{after.method} vs {before.method}", after.way, results, average)


def listed_positions(answers: dict[str, dict[str, int | None]]) -> dict[int | None, int]:
    """How often each listed position was chosen: 1 for the first option the prompt lists, 2
    for the second, ...; None for replies that are no option. `answers` maps country -> item ->
    survey code, as `Row.answers` (forward listing, the paper's order)."""
    from culturespa.survey.items import get_item

    counts: dict[int | None, int] = {}
    for by_item in answers.values():
        for qid, code in by_item.items():
            position = None
            if code is not None:
                listed = [o.code for o in get_item(qid).listing()]
                position = listed.index(code) + 1 if code in listed else None
            counts[position] = counts.get(position, 0) + 1
    return counts


def _x100(value: float) -> str:
    return f"{100 * value:.1f}" if math.isfinite(value) else "–"


def _csv100(value: float) -> str:
    return f"{100 * value:.2f}" if math.isfinite(value) else ""


def _delta(value: float, low: float, high: float) -> str:
    return f"{_x100(value)} [{_x100(low)}, {_x100(high)}]"


def steerability_markdown(analyses: list[Steerability]) -> str:
    """One table per model: per country the shares moved closer / away and the change."""
    parts = []
    for a in analyses:
        lines = [
            f"### {markdown_cell(a.name)}\n",
            "| country | items | closer | away | unchanged | change in alignment [95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for s in a.countries:
            lines.append(
                markdown_row(
                    [s.country, s.n_items, f"{_x100(s.closer)}%", f"{_x100(s.away)}%",
                     f"{_x100(s.unchanged)}%", _delta(s.delta, s.delta_low, s.delta_high)]
                )
            )  # fmt: skip
        if a.average is not None:
            lines.append(
                markdown_row(["AVG (paper's countries)", "", "", "", "", _delta(*a.average)])
            )
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def steerability_csv(analyses: list[Steerability]) -> str:
    head = ["model", "way", "generation", "country", "items", "closer", "away", "unchanged",
            "delta", "delta_ci_low", "delta_ci_high"]  # fmt: skip
    lines = [
        [a.model, a.way, int(a.generation), s.country, s.n_items, *(
            _csv100(v) for v in (s.closer, s.away, s.unchanged, s.delta, s.delta_low, s.delta_high)
        )]
        for a in analyses
        for s in a.countries
    ]  # fmt: skip
    return csv_text(head, lines)


# Order consistency and agreement between ways ---------------------------------------------


@dataclass
class OrderConsistencyAnalysis:
    """One model and template asked with the options forward and reversed (log-likelihood)."""

    model: str
    template: str
    countries: list[OrderConsistency]
    average: ConsistencyAverage | None

    @property
    def name(self) -> str:
        return f"{self.model} | {TEMPLATES[self.template].label}"

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "template": self.template,
            "average": None if self.average is None else _plain(self.average.as_dict()),
            "countries": {c.country: _plain(c.as_dict()) for c in self.countries},
        }


def _plain(value: object) -> object:
    """JSON-ready: floats rounded (NaN as None), through dicts and lists."""
    if isinstance(value, float):
        return _none(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def order_consistency(
    rows: list[Row], seed: int = 0, n_resamples: int = 1000
) -> list[OrderConsistencyAnalysis]:
    """For every model and template with forward (`loglik`) and reversed (`rev`) rows that hold
    per-item answers: the same-option share and alignment forward minus reversed per country,
    on one shared draw of items for both rows."""
    by_key = {(r.label, r.template, r.way): r for r in rows if not r.is_reference}
    out = []
    for (label, template, way), forward in by_key.items():
        reverse = by_key.get((label, template, "rev"))
        if way != "loglik" or reverse is None or not forward.answers or not reverse.answers:
            continue
        results, average = consistency_countries(
            forward.answers, reverse.answers, n_resamples, seed
        )
        if results:
            out.append(OrderConsistencyAnalysis(label, template, results, average))
    return out


def order_consistency_markdown(analyses: list[OrderConsistencyAnalysis]) -> str:
    """One table per model and template: per country the same-option share and the scores."""
    parts = []
    for a in analyses:
        lines = [
            f"### {markdown_cell(a.name)}\n",
            "| country | items | same option | alignment forward | alignment reversed | "
            "forward - reversed [95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for c in a.countries:
            lines.append(
                markdown_row(
                    [c.country, c.n_items, f"{_x100(c.same)}%", _x100(c.forward),
                     _x100(c.reversed), _delta(c.delta, c.delta_low, c.delta_high)]
                )
            )  # fmt: skip
        if a.average is not None:
            avg = a.average
            lines.append(
                markdown_row(
                    [f"AVG ({avg.n_countries} of the paper's countries)", "", f"{_x100(avg.same)}%",
                     "", "", _delta(avg.delta, avg.delta_low, avg.delta_high)]
                )
            )  # fmt: skip
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def order_consistency_csv(analyses: list[OrderConsistencyAnalysis]) -> str:
    head = ["model", "template", "country", "items", "same", "alignment_forward",
            "alignment_reversed", "delta", "delta_ci_low", "delta_ci_high"]  # fmt: skip
    lines = [
        [a.model, a.template, c.country, c.n_items, *(
            _csv100(v) for v in (c.same, c.forward, c.reversed, c.delta, c.delta_low, c.delta_high)
        )]
        for a in analyses
        for c in a.countries
    ]  # fmt: skip
    return csv_text(head, lines)


@dataclass(frozen=True)
class WayAgreement:
    """How often two ways of asking one model with one template name the same option."""

    model: str
    template: str
    first: str
    second: str
    n_items: int  # (country, item) pairs both ways answered
    same: float

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "template": self.template,
            "ways": [self.first, self.second],
            "n_items": self.n_items,
            "same": _none(self.same),
        }


def way_agreement(rows: list[Row]) -> list[WayAgreement]:
    """For every model and template asked in two ways or more (rows with per-item answers):
    each pair of ways, the share of (country, item) pairs where both name the same option."""
    by_key: dict[tuple[str, str], dict[str, Row]] = {}
    for row in rows:
        if not row.is_reference and row.answers:
            by_key.setdefault((row.label, row.template), {})[row.way] = row
    out = []
    for (label, template), by_way in by_key.items():
        ways = [w for w in WAYS if w in by_way]
        for first, second in combinations(ways, 2):
            n, same = pooled_agreement(by_way[first].answers, by_way[second].answers)
            if n:
                out.append(WayAgreement(label, template, first, second, n, same))
    return out


def agreement_markdown(agreements: list[WayAgreement]) -> str:
    lines = [
        "| model | template | way | other way | items | same option |",
        "|---|---|---|---|---|---|",
    ]
    for a in agreements:
        lines.append(
            markdown_row(
                [a.model, TEMPLATES[a.template].label, WAY_LABELS[a.first], WAY_LABELS[a.second],
                 a.n_items, f"{_x100(a.same)}%"]
            )
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def agreement_csv(agreements: list[WayAgreement]) -> str:
    head = ["model", "template", "way", "other_way", "items", "same"]
    lines = [
        [a.model, a.template, a.first, a.second, a.n_items, _csv100(a.same)] for a in agreements
    ]
    return csv_text(head, lines)


# Relations between cultures -----------------------------------------------------------------

MIN_RELATION_COUNTRIES = 3
"""Countries with per-item answers a row needs for its relations between cultures."""


def relation_matrices(row: Row) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """Country similarity implied by the model's answers, the survey's, and their correlation."""
    countries = [cc for cc in WAVE7_COUNTRIES if cc in row.answers]
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
