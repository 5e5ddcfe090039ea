"""Scores: the paper's alignment score, distributional scores, coverage and bootstrap intervals."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from culturespa.errors import CulturespaError
from culturespa.survey import get_item, survey_distribution, survey_majority

_FIRST_INTEGER = re.compile(r"\d+")
MAX_VALID_ANSWER = 10


def parse_answer(reply: str | int | float | None) -> int | None:
    """The paper's parser: the first integer in the reply if it lies in 0..10, else None.

    Every answer is read as text: a number (an int or float from a JSON reply file) is first
    turned into its text, so 7, 7.0 and "7" give 7; a boolean is refused. The first integer keeps
    its sign when a minus sign directly precedes it and is not itself preceded by a letter or a
    digit: "-1" and "answer: -3" are negative, so invalid, while "1-4" gives 1 and "Option-2"
    gives 2. The paper's regex (`\\d+`) would read "-1" as 1; no reply in its released files has
    such a sign, so its published scores are unchanged.
    """
    if reply is None:
        return None
    if isinstance(reply, bool):
        raise CulturespaError(f"an answer must be text or a number, not the boolean {reply}")
    text = reply if isinstance(reply, str) else str(reply)
    match = _FIRST_INTEGER.search(text)
    if match is None:
        return None
    value = int(match.group())
    start = match.start()
    if start >= 1 and text[start - 1] == "-" and (start == 1 or not text[start - 2].isalnum()):
        value = -value
    return value if 0 <= value <= MAX_VALID_ANSWER else None


def alignment_from_arrays(
    answers: Sequence[float], majorities: Sequence[float], max_distances: Sequence[float]
) -> float:
    """1 - ||a - m||_2 / ||(n_i - 1)_i||_2 (the paper's formula, in [0, 1] for in-range answers)."""
    if len(answers) == 0:
        return float("nan")
    a = np.asarray(answers, dtype=float)
    m = np.asarray(majorities, dtype=float)
    n = np.asarray(max_distances, dtype=float)
    return float(1.0 - np.linalg.norm(a - m) / np.linalg.norm(n))


@dataclass(frozen=True)
class ScoredItem:
    """One item's answer next to the survey, ready for aggregation."""

    qid: str
    answer: int
    majority: int
    max_distance: int


def collect_scored_items(answers: Mapping[str, int | None], country: str) -> list[ScoredItem]:
    """Keep items with a valid answer and survey data for the country (the paper's skipping)."""
    rows = []
    for qid, answer in answers.items():
        majority = survey_majority(country, qid)
        if answer is None or majority is None:
            continue
        rows.append(ScoredItem(qid, answer, majority, get_item(qid).max_distance))
    return rows


def alignment_of(rows: Sequence[ScoredItem]) -> float:
    """The paper's alignment score (0..1) over already-collected items."""
    return alignment_from_arrays(
        [r.answer for r in rows], [r.majority for r in rows], [r.max_distance for r in rows]
    )


def bootstrap_indices(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """Item indices of `n_resamples` bootstrap samples, drawn with replacement (one row each)."""
    return np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))


def percentile_interval(replicates: np.ndarray | None, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaNs when there are none)."""
    if replicates is None or len(replicates) == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return float(lo), float(hi)


def alignment_replicates(
    rows: Sequence[ScoredItem], n_resamples: int = 1000, seed: int = 0
) -> np.ndarray | None:
    """Bootstrap replicates of the paper's score over items, vectorised (None for < 2 items)."""
    if len(rows) < 2 or n_resamples < 1:
        return None
    squared = np.array([(r.answer - r.majority) ** 2 for r in rows], dtype=float)
    spans = np.array([r.max_distance**2 for r in rows], dtype=float)
    idx = bootstrap_indices(len(rows), n_resamples, seed)
    return 1.0 - np.sqrt(squared[idx].sum(axis=1) / spans[idx].sum(axis=1))


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


def mean_statistic(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


@dataclass(frozen=True)
class CountryScore:
    """A country's alignment score with its coverage and interval (all on the 0..1 scale)."""

    country: str
    alignment: float
    ci_low: float
    ci_high: float
    n_valid: int
    n_items: int

    @property
    def coverage(self) -> float:
        """Share of the items with survey data that got a valid answer."""
        return self.n_valid / self.n_items if self.n_items else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "coverage": self.coverage}


def score_country(
    answers: Mapping[str, int | None], country: str, n_resamples: int = 1000, seed: int = 0
) -> CountryScore:
    """The paper's alignment score for one country, with coverage and a bootstrap 95% interval.

    `answers` maps item ids to parsed answers (None = invalid reply). Coverage counts the items
    that have survey data for the country; an item missing from `answers` counts as unanswered.
    """
    rows = collect_scored_items(answers, country)
    from culturespa.survey import items_with_data

    n_items = len(items_with_data(country))
    lo, hi = percentile_interval(alignment_replicates(rows, n_resamples, seed))
    return CountryScore(country, alignment_of(rows), lo, hi, len(rows), n_items)


# Distributional scores --------------------------------------------------------------------


def _as_distribution(p: Sequence[float]) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or np.any(arr < 0) or arr.sum() <= 0:
        raise ValueError(f"not a probability distribution: {p!r}")
    return arr / arr.sum()


def wasserstein_score(p: Sequence[float], q: Sequence[float]) -> float:
    """1 - W1(p, q) / (n - 1) on the option order (unit spacing), as in OpinionQA."""
    p, q = _as_distribution(p), _as_distribution(q)
    if p.shape != q.shape:
        raise ValueError("distributions over different numbers of options")
    if p.size == 1:
        return 1.0
    w1 = float(np.abs(np.cumsum(p) - np.cumsum(q))[:-1].sum())
    return 1.0 - w1 / (p.size - 1)


def jensen_shannon_score(p: Sequence[float], q: Sequence[float]) -> float:
    """1 - Jensen-Shannon distance with base-2 logarithms (0 = disjoint, 1 = identical)."""
    p, q = _as_distribution(p), _as_distribution(q)
    if p.shape != q.shape:
        raise ValueError("distributions over different numbers of options")
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    divergence = max(0.0, (kl(p, m) + kl(q, m)) / 2)
    return 1.0 - math.sqrt(divergence)


def majority_match(p: Sequence[float], survey: Sequence[float]) -> float:
    """1.0 if the model's most likely option is the survey's majority option, else 0.0."""
    return float(int(np.argmax(p)) == int(np.argmax(survey)))


@dataclass(frozen=True)
class DistributionScores:
    """Per-item distributional scores against a country's survey shares."""

    alignment_w1: float
    alignment_jsd: float
    majority_match: float


def distribution_scores(
    model_probs: Sequence[float], country: str, qid: str
) -> DistributionScores | None:
    """Compare the model's distribution over an item's options with the survey's (None if no data)."""
    survey = survey_distribution(country, qid)
    if survey is None:
        return None
    return DistributionScores(
        alignment_w1=wasserstein_score(model_probs, survey),
        alignment_jsd=jensen_shannon_score(model_probs, survey),
        majority_match=majority_match(model_probs, survey),
    )
