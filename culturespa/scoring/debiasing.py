"""Option distributions with the answer's place and label taken out: permuted orders, calibration.

Both ways start from the log-likelihoods a model gives each option number of a prompt.

- Permuted orders: an item with k options is asked in its k cyclic orders (the survey's order
  started at each option in turn and wrapped round), the options numbered 1..k by place, so every
  option takes every place, and every label, exactly once. Each order's softmax is mapped back to
  the survey's codes; the pooled distribution is the normalised geometric mean over the orders
  (the mean of the log-probabilities, then a softmax). Any log-likelihood term that depends only
  on the place or the label is the same sum for every option and cancels exactly; with the
  arithmetic mean it cancels only approximately, and a strong place effect rounds the option's
  own preference away in float64 (docs/ways_debiased.md).
- Calibration (Zhao et al., "Calibrate Before Use", ICML 2021): the item's distribution divided
  by the one the model gives a content-free prompt with the same labels, renormalised.

The answer is the most likely survey option. Where several options are within `TIE_TOLERANCE`
of the largest log-probability, the item has no answer: the model has no preference among them
once position is removed, and no fixed rule (first, last, middle) may pick one for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TIE_TOLERANCE = 1e-9
"""Options whose pooled log-probabilities differ by less than this are tied (no answer)."""


def cyclic_shifts(n_options: int) -> list[int]:
    """The orders of the permuted way: shift s lists the survey's options from the s-th round."""
    return list(range(n_options))


def log_softmax(scores: Sequence[float]) -> np.ndarray:
    """Log-probabilities of the options from their log-likelihoods."""
    x = np.asarray(scores, dtype=float)
    top = x.max()
    return x - top - np.log(np.exp(x - top).sum())


@dataclass(frozen=True)
class Debiased:
    """One item's debiased distribution over the survey's codes, and its answer (None if tied)."""

    codes: tuple[int, ...]
    probs: np.ndarray
    answer: int | None


def answer_of(codes: Sequence[int], log_probs: Sequence[float]) -> int | None:
    """The code with the largest log-probability; None when another is within the tolerance."""
    values = np.asarray(log_probs, dtype=float)
    best = values.max()
    leaders = [c for c, v in zip(codes, values) if best - v < TIE_TOLERANCE]
    return leaders[0] if len(leaders) == 1 else None


def _debiased(codes: Sequence[int], log_scores: np.ndarray) -> Debiased:
    pooled = log_softmax(log_scores)
    return Debiased(tuple(codes), np.exp(pooled), answer_of(codes, pooled))


def pooled_over_orders(
    codes: Sequence[int], listed_codes: Sequence[Sequence[int]], logliks: Sequence[Sequence[float]]
) -> Debiased:
    """The permuted way's distribution over `codes` (survey order): per order, the softmax of
    its options' log-likelihoods (`logliks[o][i]` for the i-th listed option, survey code
    `listed_codes[o][i]`), pooled as the mean of the log-probabilities over the orders."""
    if len(listed_codes) != len(logliks) or not logliks:
        raise ValueError("one list of log-likelihoods per order is needed")
    total = np.zeros(len(codes))
    for listed, scores in zip(listed_codes, logliks):
        if sorted(listed) != sorted(codes) or len(scores) != len(codes):
            raise ValueError(f"order {list(listed)} does not list the options {list(codes)}")
        for code, value in zip(listed, log_softmax(scores)):
            total[list(codes).index(code)] += value
    return _debiased(codes, total / len(logliks))


def per_order_answers(
    listed_codes: Sequence[Sequence[int]], logliks: Sequence[Sequence[float]]
) -> list[int | None]:
    """The survey code each order alone would answer (for the sample logs)."""
    return [answer_of(listed, log_softmax(scores)) for listed, scores in zip(listed_codes, logliks)]


def calibrated(
    codes: Sequence[int], item_logliks: Sequence[float], content_free_logliks: Sequence[float]
) -> Debiased:
    """The item's option distribution divided by the content-free prompt's (same labels, same
    order), renormalised; both given per listed option, `codes` the survey codes listed."""
    if len(item_logliks) != len(codes) or len(content_free_logliks) != len(codes):
        raise ValueError("the item and the content-free prompt need one score per option")
    return _debiased(codes, log_softmax(item_logliks) - log_softmax(content_free_logliks))
