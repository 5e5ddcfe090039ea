"""Steerability: does the persona move a model's answers toward the country's majority?

From a culture-unaware and a culture-aware run of one model, per country and on the items both
answered (with survey data): the share of items where the persona moves the answer closer to the
survey majority, the share where it moves it away, and the change in the paper's score
(aware - unaware) with a paired bootstrap interval (one draw of items for both runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from culturespa.scoring import ItemDraw, alignment_of, collect_scored_items, percentile_interval


@dataclass(frozen=True)
class Steer:
    """How the persona moved one country's answers (shares on the 0..1 scale)."""

    country: str
    n_items: int
    closer: float
    away: float
    unchanged: float
    delta: float
    delta_low: float
    delta_high: float
    replicates: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {
            "country": self.country,
            "n_items": self.n_items,
            "closer": self.closer,
            "away": self.away,
            "unchanged": self.unchanged,
            "delta": self.delta,
            "delta_ci": [self.delta_low, self.delta_high],
        }


def steer(
    unaware: Mapping[str, int | None],
    aware: Mapping[str, int | None],
    country: str,
    n_resamples: int = 1000,
    seed: int = 0,
    draw: ItemDraw | None = None,
) -> Steer:
    """Compare one country's culture-aware answers with the same model's culture-unaware ones.

    Only items that both runs answered validly and that have survey data count. `draw` (a
    bootstrap draw over at least these items) pairs the interval with other countries'; by
    default one is drawn over the shared items.
    """
    before = {r.qid: r for r in collect_scored_items(unaware, country)}
    after = {r.qid: r for r in collect_scored_items(aware, country)}
    shared = [qid for qid in after if qid in before]
    if not shared:
        nan = math.nan
        return Steer(country, 0, nan, nan, nan, nan, nan, nan)
    closer = away = 0
    for qid in shared:
        old = abs(before[qid].answer - before[qid].majority)
        new = abs(after[qid].answer - after[qid].majority)
        closer += new < old
        away += new > old
    rows_before = [before[q] for q in shared]
    rows_after = [after[q] for q in shared]
    delta = alignment_of(rows_after) - alignment_of(rows_before)
    draw = draw if draw is not None else ItemDraw.over(shared, n_resamples, seed)
    replicates = None
    if draw is not None and len(shared) >= 2:
        replicates = draw.alignment(rows_after) - draw.alignment(rows_before)
    low, high = percentile_interval(replicates)
    n = len(shared)
    return Steer(
        country,
        n,
        closer / n,
        away / n,
        (n - closer - away) / n,
        delta,
        low,
        high,
        replicates,
    )


def steer_countries(
    unaware: Mapping[str, Mapping[str, int | None]],
    aware: Mapping[str, Mapping[str, int | None]],
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[Steer], tuple[float, float, float] | None]:
    """Steerability of every country both runs hold, on one shared draw of items; and the mean
    change over the paper's countries among them with its paired interval (or None)."""
    from culturespa.countries import PAPER_COUNTRIES

    countries = [cc for cc in aware if cc in unaware]
    items: set[str] = set()
    for cc in countries:
        items |= {r.qid for r in collect_scored_items(aware[cc], cc)}
    draw = ItemDraw.over(items, n_resamples, seed)
    results = [steer(unaware[cc], aware[cc], cc, draw=draw) for cc in countries]
    paper = [s for s in results if s.country in PAPER_COUNTRIES and not math.isnan(s.delta)]
    if not paper:
        return results, None
    mean = float(np.mean([s.delta for s in paper]))
    reps = [s.replicates for s in paper]
    low = high = math.nan
    if all(r is not None for r in reps):
        low, high = percentile_interval(np.mean(np.stack(reps), axis=0))
    return results, (mean, low, high)
