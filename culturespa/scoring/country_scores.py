"""A country's score of one set of answers: alignment, coverage, interval, specific items."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from culturespa.scoring.answers import alignment_of, collect_scored_items
from culturespa.scoring.bootstrap import ItemDraw, mean_of_replicates, percentile_interval
from culturespa.survey.countries import in_paper_average
from culturespa.survey.items import culture_specific_items, items_with_data


@dataclass(frozen=True)
class CountryScore:
    """A country's alignment score with its coverage and interval (all on the 0..1 scale).

    `n_scored` items enter the paper's score (a parsable answer in 0..10 and survey data);
    `n_out_of_range` of them answered a number that is not one of the item's options (the paper
    scores them too); `n_items` is the number of items with survey data for the country.
    """

    country: str
    alignment: float
    ci_low: float
    ci_high: float
    n_scored: int
    n_items: int
    n_out_of_range: int = 0
    alignment_specific: float = math.nan  # on the culture-specific items (see survey)
    n_specific: int = 0  # culture-specific items among the scored ones

    @property
    def coverage(self) -> float:
        """Share of the items with survey data whose answer is one of the item's options."""
        return (self.n_scored - self.n_out_of_range) / self.n_items if self.n_items else math.nan

    def as_dict(self) -> dict:
        return {**asdict(self), "coverage": self.coverage}


def score_countries(
    answers: Mapping[str, int | None],
    countries: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[CountryScore], np.ndarray | None]:
    """Each country's score of one set of answers, on one shared bootstrap draw of items.

    Returns the scores and the replicates of the paper's AVG over the countries given (its 18
    among them; None without resampling or without any of them), so that the average gets a
    paired interval (see `ItemDraw`).
    """
    collected = {code: collect_scored_items(answers, code) for code in countries}
    specific = {code: set(culture_specific_items(code)) for code in countries}
    draw = ItemDraw.over({r.qid for rows in collected.values() for r in rows}, n_resamples, seed)
    scores, replicates = [], []
    for code, rows in collected.items():
        reps = None if draw is None or len(rows) < 2 else draw.alignment(rows)
        lo, hi = percentile_interval(reps)
        scores.append(
            CountryScore(
                code,
                alignment_of(rows),
                lo,
                hi,
                len(rows),
                len(items_with_data(code)),
                sum(not r.in_options for r in rows),
                alignment_of([r for r in rows if r.qid in specific[code]]),
                sum(r.qid in specific[code] for r in rows),
            )
        )
        replicates.append(reps)
    averaged = [r for s, r in zip(scores, replicates) if s.country in in_paper_average(countries)]
    if draw is None or not averaged or any(r is None for r in averaged):
        return scores, None
    return scores, mean_of_replicates(averaged)


def score_country(
    answers: Mapping[str, int | None], country: str, n_resamples: int = 1000, seed: int = 0
) -> CountryScore:
    """The paper's alignment score for one country, with coverage and a bootstrap 95% interval.

    `answers` maps item ids to parsed answers (None = invalid reply). Coverage counts the items
    that have survey data for the country; an item missing from `answers` counts as unanswered.
    """
    return score_countries(answers, [country], n_resamples, seed)[0][0]
