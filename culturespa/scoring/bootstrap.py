"""Bootstrap intervals over items, paired across the countries and runs that share a draw."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from culturespa.scoring.answers import ScoredItem
from culturespa.survey.items import scored_items


def bootstrap_indices(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """Item indices of `n_resamples` bootstrap samples, drawn with replacement (one row each)."""
    return np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))


def percentile_interval(replicates: np.ndarray | None, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaNs when there are none)."""
    if replicates is None or len(replicates) == 0:
        return (float("nan"), float("nan"))
    kept = np.asarray(replicates, dtype=float)
    kept = kept[np.isfinite(kept)]
    if kept.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(kept, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _questionnaire_order(qids: Iterable[str]) -> tuple[str, ...]:
    position = {qid: i for i, qid in enumerate(scored_items())}
    return tuple(sorted(set(qids), key=lambda q: (position.get(q, len(position)), q)))


@dataclass(frozen=True)
class ItemDraw:
    """One bootstrap draw of items, shared by every score computed from it.

    All countries of a leaderboard row are scored on the same questionnaire (and a
    culture-unaware run on the same replies), so their scores are not independent: resampling
    each country on its own and averaging makes the average's interval far too narrow. Every
    replicate here draws item indices once, and each country (and each run of the row) is
    scored on the drawn items it has, so a replicate of the average is the average of the
    countries' replicates on one and the same draw.
    """

    items: tuple[str, ...]
    counts: np.ndarray  # (n_resamples, n_items): how often replicate r drew item i

    @classmethod
    def over(cls, qids: Iterable[str], n_resamples: int = 1000, seed: int = 0) -> ItemDraw | None:
        """A draw over the given items (questionnaire order); None for < 2 items or no resample."""
        items = _questionnaire_order(qids)
        if len(items) < 2 or n_resamples < 1:
            return None
        idx = bootstrap_indices(len(items), n_resamples, seed)
        counts = np.zeros((n_resamples, len(items)), dtype=np.int32)
        np.add.at(counts, (np.arange(n_resamples)[:, None], idx), 1)
        return cls(items, counts)

    def _vector(self, values: Mapping[str, float]) -> np.ndarray:
        position = {qid: i for i, qid in enumerate(self.items)}
        vector = np.zeros(len(self.items))
        for qid, value in values.items():
            if qid not in position:
                raise ValueError(f"item {qid} is not part of this bootstrap draw")
            vector[position[qid]] = value
        return vector

    def alignment(self, rows: Sequence[ScoredItem]) -> np.ndarray:
        """Replicates of the paper's score over `rows` (NaN where a replicate drew none of them)."""
        squared = self._vector({r.qid: float((r.answer - r.majority) ** 2) for r in rows})
        spans = self._vector({r.qid: float(r.max_distance**2) for r in rows})
        num, den = self.counts @ squared, self.counts @ spans
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, 1.0 - np.sqrt(num / den), np.nan)

    def mean(self, values: Mapping[str, float]) -> np.ndarray:
        """Replicates of the mean of per-item values (items absent from `values` are skipped)."""
        vector = self._vector(values)
        mask = self._vector(dict.fromkeys(values, 1.0))
        num, den = self.counts @ vector, self.counts @ mask
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)


def mean_of_replicates(replicates: Sequence[np.ndarray]) -> np.ndarray:
    """Replicates of a mean of scores computed on one shared draw (the paired average)."""
    return np.mean(np.stack(list(replicates)), axis=0)


def bootstrap_interval(
    values: Sequence,
    statistic: Callable[[Sequence], float],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over items resampled with replacement."""
    values = list(values)
    if len(values) < 2 or n_resamples < 1:
        return (float("nan"), float("nan"))
    idx = bootstrap_indices(len(values), n_resamples, seed)
    stats = np.array([statistic([values[i] for i in row]) for row in idx])
    return percentile_interval(stats, level)
