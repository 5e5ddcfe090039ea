"""Reference rows computed from the survey alone: what simple answer rules score, per country.

A score means little on its own: "always the middle option" already scores 56 (x100) on the
paper's alignment score. Each reference rule answers one option per item, drawn from a
distribution over the item's options (a point mass for a deterministic rule); every score is the
exact expectation over that draw, on the country's items with survey data (or a given subset),
with the same skipping rule as model rows. The paper's score is not linear in the answers, so
its expectation is computed from the exact distribution of the summed squared distances
(a convolution over items), not from a sample; W1, JSD and majority match are per-item means, so
their expectations are per-item expectations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from culturespa.errors import CulturespaError
from culturespa.scoring.distributions import jensen_shannon_score, wasserstein_score
from culturespa.scoring.metric_names import ALIGNMENT, ALIGNMENT_SPECIFIC, REFERENCE_METRICS
from culturespa.survey.countries import get_country, paper_average
from culturespa.survey.folder import survey_cached
from culturespa.survey.items import (
    consensus_majority,
    culture_specific_items,
    get_item,
    items_with_data,
    survey_country_similarity,
    survey_distribution,
    survey_majority,
)
from culturespa.survey.similarity import country_similarity


@dataclass(frozen=True)
class ReferenceRule:
    """An answer rule that needs no model."""

    name: str
    label: str
    meaning: str


RULES: dict[str, ReferenceRule] = {
    rule.name: rule
    for rule in (
        ReferenceRule(
            "uniform",
            "Uniform random option",
            "an option drawn uniformly at random (exact expected score)",
        ),
        ReferenceRule(
            "middle",
            "Middle option",
            "always the middle option (for an even number of options, the upper of the two)",
        ),
        ReferenceRule(
            "consensus",
            "Culture-agnostic consensus",
            "the majority option of the paper's 18 countries' pooled shares, for every country",
        ),
        ReferenceRule(
            "respondent",
            "A respondent of the country",
            "an answer drawn from the country's own survey shares (exact expected score)",
        ),
        ReferenceRule(
            "nearest_country",
            "Most similar other country",
            "the majority answers of the most similar other country (leave-one-out): knowing "
            "the wrong culture well",
        ),
        ReferenceRule(
            "own_majority",
            "Own majority (ceiling)",
            "the country's own majority answers: 100 on the paper's score",
        ),
    )
}


def get_rule(name: str) -> ReferenceRule:
    rule = RULES.get(name)
    if rule is None:
        raise CulturespaError(f"unknown reference rule {name!r}; known: {', '.join(RULES)}")
    return rule


@survey_cached
def nearest_countries(country: str) -> tuple[str, ...]:
    """The other countries of the survey's similarity table (the paper's 18 in the shipped
    survey), most similar first (similarity computed from the survey)."""
    code = get_country(country).code
    others = [c for c in survey_country_similarity() if c != code]
    return tuple(sorted(others, key=lambda other: -country_similarity(code, other)))


def _point(qid: str, number: int) -> np.ndarray:
    item = get_item(qid)
    q = np.zeros(len(item.options))
    q[item.option_numbers.index(number)] = 1.0
    return q


def answer_distribution(rule: str, country: str, qid: str) -> np.ndarray | None:
    """The distribution over the item's options (option order) the rule draws its answer from;
    None where the rule gives no answer."""
    item = get_item(qid)
    k = len(item.options)
    if rule == "uniform":
        return np.full(k, 1.0 / k)
    if rule == "middle":
        return _point(qid, item.option_numbers[k // 2])
    if rule == "consensus":
        majority = consensus_majority(qid)
        return None if majority is None else _point(qid, majority)
    if rule == "respondent":
        return survey_distribution(country, qid)
    if rule == "nearest_country":
        for other in nearest_countries(country):
            majority = survey_majority(other, qid)
            if majority is not None:
                return _point(qid, majority)
        return None
    if rule == "own_majority":
        majority = survey_majority(country, qid)
        return None if majority is None else _point(qid, majority)
    raise CulturespaError(f"unknown reference rule {rule!r}; known: {', '.join(RULES)}")


def expected_alignment(
    distributions: Sequence[np.ndarray], qids: Sequence[str], country: str
) -> float:
    """Exact expectation of the paper's score when item i's answer is drawn from
    distributions[i], independently: E[1 - sqrt(S) / ||(n_i - 1)_i||] with S the summed
    squared distances to the survey majority, whose distribution is the convolution of the
    items' distributions of squared distances."""
    if not qids:
        return math.nan
    total = np.array([1.0])
    spans = 0.0
    for q, qid in zip(distributions, qids):
        item = get_item(qid)
        majority = survey_majority(country, qid)
        squared = [(n - majority) ** 2 for n in item.option_numbers]
        per_item = np.zeros(max(squared) + 1)
        np.add.at(per_item, squared, q)
        total = np.convolve(total, per_item)
        spans += item.max_distance**2
    distances = np.sqrt(np.arange(len(total)))
    return float(np.sum(total * (1.0 - distances / math.sqrt(spans))))


@survey_cached
def _point_scores(country: str, qid: str) -> tuple[np.ndarray, np.ndarray]:
    """W1 and JSD scores of answering each option of the item, against the country's shares."""
    survey = survey_distribution(country, qid)
    k = len(survey)
    w1 = np.array([wasserstein_score(np.eye(k)[o], survey) for o in range(k)])
    jsd = np.array([jensen_shannon_score(np.eye(k)[o], survey) for o in range(k)])
    return w1, jsd


def expected_item_scores(q: np.ndarray, country: str, qid: str) -> dict[str, float]:
    """Expected W1, JSD and majority match of one answer drawn from `q` (each a point mass
    compared with the country's shares, as a generation task scores a reply)."""
    w1, jsd = _point_scores(country, qid)
    majority_index = get_item(qid).option_numbers.index(survey_majority(country, qid))
    return {
        "alignment_w1": float(q @ w1),
        "alignment_jsd": float(q @ jsd),
        "majority_match": float(q[majority_index]),
    }


@dataclass(frozen=True)
class ReferenceScore:
    """One rule's expected scores for one country (0..1 scale) and what they cover."""

    rule: str
    country: str
    scores: dict[str, float]
    n_items: int
    n_answered: int

    @property
    def coverage(self) -> float:
        return self.n_answered / self.n_items if self.n_items else math.nan


def reference_score(rule: str, country: str, qids: Iterable[str] | None = None) -> ReferenceScore:
    """A rule's expected scores on the country's items with survey data (or those of `qids`)."""
    get_rule(rule)
    code = get_country(country).code
    surveyed = items_with_data(code)
    if qids is not None:
        wanted = set(qids)
        surveyed = [qid for qid in surveyed if qid in wanted]
    answered, distributions = [], []
    for qid in surveyed:
        q = answer_distribution(rule, code, qid)
        if q is not None:
            answered.append(qid)
            distributions.append(q)
    scores = {"alignment": expected_alignment(distributions, answered, code)}
    per_item = [expected_item_scores(q, code, qid) for q, qid in zip(distributions, answered)]
    for metric in ("alignment_w1", "alignment_jsd", "majority_match"):
        values = [s[metric] for s in per_item]
        scores[metric] = float(np.mean(values)) if values else math.nan
    return ReferenceScore(rule, code, scores, len(surveyed), len(answered))


def reference_table(
    countries: Sequence[str], rules: Sequence[str] = tuple(RULES)
) -> dict[str, dict[str, ReferenceScore]]:
    """{rule: {country: score}} for every rule and country."""
    return {rule: {cc: reference_score(rule, cc) for cc in countries} for rule in rules}


def reference_average(by_country: dict[str, ReferenceScore], metric: str) -> float:
    """A rule's AVG: the paper's average of its scores (the paper's 18 countries present)."""
    return paper_average({cc: s.scores[metric] for cc, s in by_country.items()})


def reference_value(
    rule: str, country: str, metric: str, qids: Iterable[str] | None = None
) -> tuple[float, float]:
    """(expected value of `metric`, coverage) of a rule for a country, on its items with survey
    data (or those of `qids`); `alignment_specific` takes the culture-specific items among them."""
    if metric == ALIGNMENT_SPECIFIC:
        specific = set(culture_specific_items(country))
        qids = [q for q in (qids if qids is not None else specific) if q in specific]
        metric = ALIGNMENT
    if metric not in REFERENCE_METRICS:
        raise CulturespaError(f"no reference value for metric {metric!r}")
    score = reference_score(rule, country, qids)
    return score.scores[metric], score.coverage
