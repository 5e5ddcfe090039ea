"""Agreement between two sets of answers to the same items: ways of asking, option orders.

Answers are survey codes ({item id: code}, None for an unusable reply), so a reply to the options
listed in reverse and one to the forward listing are compared on the option they name. Order
consistency compares a model's forward and reversed log-likelihood answers for one country: the
share of items where both name the same option, and the change in the paper's score (forward
minus reversed) with a paired bootstrap interval (one draw of items for both orders).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from culturespa.scoring.answers import alignment_of, collect_scored_items
from culturespa.scoring.bootstrap import ItemDraw, percentile_interval

Answers = Mapping[str, int | None]


def shared_items(first: Answers, second: Answers) -> list[str]:
    """Items both answered validly, in the first's order."""
    return [q for q, a in first.items() if a is not None and second.get(q) is not None]


def same_option_share(first: Answers, second: Answers) -> tuple[int, float]:
    """(items both answered, share of them where both name the same option; NaN for none)."""
    items = shared_items(first, second)
    if not items:
        return 0, math.nan
    return len(items), sum(first[q] == second[q] for q in items) / len(items)


def pooled_agreement(
    first: Mapping[str, Answers], second: Mapping[str, Answers]
) -> tuple[int, float]:
    """Agreement over every (country, item) pair both answered, pooled over the countries both
    hold: (number of pairs, share with the same option)."""
    n = same = 0
    for country in first:
        if country not in second:
            continue
        items = shared_items(first[country], second[country])
        n += len(items)
        same += sum(first[country][q] == second[country][q] for q in items)
    return n, (same / n if n else math.nan)


@dataclass(frozen=True)
class OrderConsistency:
    """One country's forward and reversed answers compared (shares and scores on 0..1)."""

    country: str
    n_items: int
    same: float
    forward: float
    reversed: float
    delta: float
    delta_low: float
    delta_high: float
    replicates: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {
            "country": self.country,
            "n_items": self.n_items,
            "same": self.same,
            "forward": self.forward,
            "reversed": self.reversed,
            "delta": self.delta,
            "delta_ci": [self.delta_low, self.delta_high],
        }


def order_consistency(
    forward: Answers,
    reversed_: Answers,
    country: str,
    n_resamples: int = 1000,
    seed: int = 0,
    draw: ItemDraw | None = None,
) -> OrderConsistency:
    """Compare one country's answers to the forward and the reversed listing, on the items both
    answered that have survey data. `draw` (over at least these items) pairs the interval with
    other countries'; by default one is drawn over the shared items."""
    before = {r.qid: r for r in collect_scored_items(forward, country)}
    after = {r.qid: r for r in collect_scored_items(reversed_, country)}
    shared = [q for q in before if q in after]
    if not shared:
        nan = math.nan
        return OrderConsistency(country, 0, nan, nan, nan, nan, nan, nan)
    rows_forward = [before[q] for q in shared]
    rows_reversed = [after[q] for q in shared]
    same = sum(before[q].answer == after[q].answer for q in shared) / len(shared)
    score_forward, score_reversed = alignment_of(rows_forward), alignment_of(rows_reversed)
    draw = draw if draw is not None else ItemDraw.over(shared, n_resamples, seed)
    replicates = None
    if draw is not None and len(shared) >= 2:
        replicates = draw.alignment(rows_forward) - draw.alignment(rows_reversed)
    low, high = percentile_interval(replicates)
    return OrderConsistency(
        country,
        len(shared),
        same,
        score_forward,
        score_reversed,
        score_forward - score_reversed,
        low,
        high,
        replicates,
    )


@dataclass(frozen=True)
class ConsistencyAverage:
    """The mean over the paper's countries: same-option share, and the change in alignment
    (forward minus reversed) with its paired interval."""

    n_countries: int
    same: float
    delta: float
    delta_low: float
    delta_high: float

    def as_dict(self) -> dict:
        return {
            "n_countries": self.n_countries,
            "same": self.same,
            "delta": self.delta,
            "delta_ci": [self.delta_low, self.delta_high],
        }


def consistency_countries(
    forward: Mapping[str, Answers],
    reversed_: Mapping[str, Answers],
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[OrderConsistency], ConsistencyAverage | None]:
    """Order consistency of every country both hold, on one shared draw of items, and the mean
    over the paper's countries among them (None when there are none)."""
    from culturespa.survey.countries import PAPER_COUNTRIES

    countries = [cc for cc in forward if cc in reversed_]
    items: set[str] = set()
    for cc in countries:
        items |= {r.qid for r in collect_scored_items(forward[cc], cc)}
    draw = ItemDraw.over(items, n_resamples, seed)
    results = [order_consistency(forward[cc], reversed_[cc], cc, draw=draw) for cc in countries]
    paper = [c for c in results if c.country in PAPER_COUNTRIES and c.n_items]
    if not paper:
        return results, None
    low = high = math.nan
    reps = [c.replicates for c in paper]
    if all(r is not None for r in reps):
        low, high = percentile_interval(np.mean(np.stack(reps), axis=0))
    average = ConsistencyAverage(
        len(paper),
        float(np.mean([c.same for c in paper])),
        float(np.mean([c.delta for c in paper])),
        low,
        high,
    )
    return results, average
