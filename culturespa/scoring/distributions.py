"""Distributional scores: a model's distribution over an item's options against the survey's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from culturespa.survey.items import get_item, survey_distribution, survey_majority


def softmax(scores: Sequence[float]) -> np.ndarray:
    """The distribution over options from their log-likelihoods (no length normalisation: each
    option is scored as a complete answer)."""
    arr = np.asarray(scores, dtype=float)
    arr = np.exp(arr - arr.max())
    return arr / arr.sum()


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
