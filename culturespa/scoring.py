"""Scores: the paper's alignment score, distributional scores, coverage and bootstrap intervals."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from culturespa.errors import CulturespaError
from culturespa.survey import (
    culture_specific_items,
    get_item,
    items_with_data,
    scored_items,
    survey_distribution,
    survey_majority,
)

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

    @property
    def in_options(self) -> bool:
        """Whether the answer is one of the item's option numbers (the parser admits 0..10)."""
        return answer_in_options(self.qid, self.answer)


def answer_in_options(qid: str, answer: int | None) -> bool:
    """Whether `answer` is one of the option numbers of item `qid`."""
    return answer is not None and answer in get_item(qid).option_numbers


def collect_scored_items(answers: Mapping[str, int | None], country: str) -> list[ScoredItem]:
    """Keep items with a valid answer and survey data for the country (the paper's skipping).

    An answer the parser accepts (0..10) that is not one of the item's options is kept, as in
    the paper; `ScoredItem.in_options` tells such answers apart.
    """
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


# Bootstrap over items ---------------------------------------------------------------------


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


def alignment_replicates(
    rows: Sequence[ScoredItem], n_resamples: int = 1000, seed: int = 0
) -> np.ndarray | None:
    """Bootstrap replicates of the paper's score over its own items (None for < 2 items)."""
    draw = ItemDraw.over([r.qid for r in rows], n_resamples, seed)
    return None if draw is None else draw.alignment(rows)


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

    Returns the scores and the replicates of their plain mean (None without resampling), so
    that the average over countries gets a paired interval (see `ItemDraw`).
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
    if draw is None or any(r is None for r in replicates):
        return scores, None
    return scores, mean_of_replicates(replicates)


def score_country(
    answers: Mapping[str, int | None], country: str, n_resamples: int = 1000, seed: int = 0
) -> CountryScore:
    """The paper's alignment score for one country, with coverage and a bootstrap 95% interval.

    `answers` maps item ids to parsed answers (None = invalid reply). Coverage counts the items
    that have survey data for the country; an item missing from `answers` counts as unanswered.
    """
    return score_countries(answers, [country], n_resamples, seed)[0][0]


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


def majority_match(p: Sequence[float], majority_index: int) -> float:
    """1.0 if the model's most likely option is the survey's majority option, else 0.0.

    `majority_index` is the position of the majority option among the item's options; the
    majority is the survey file's first key (`survey_majority`), the same one the paper's
    alignment score uses, also where two options tie for the largest share.
    """
    return float(int(np.argmax(p)) == majority_index)


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
    majority = survey_majority(country, qid)
    if survey is None or majority is None:
        return None
    return DistributionScores(
        alignment_w1=wasserstein_score(model_probs, survey),
        alignment_jsd=jensen_shannon_score(model_probs, survey),
        majority_match=majority_match(model_probs, get_item(qid).option_numbers.index(majority)),
    )
