"""Country similarity from the survey: the alignment score between majority-answer vectors."""

from __future__ import annotations

from functools import cache

from culturespa.countries import PAPER_COUNTRIES, get_country
from culturespa.scoring import alignment_from_arrays
from culturespa.survey import get_item, scored_items, survey_majority


@cache
def country_similarity(first: str, second: str) -> float:
    """Alignment score (x100) between two countries' majority answers on items both surveyed."""
    a, b = get_country(first).code, get_country(second).code
    answers, majorities, distances = [], [], []
    for qid in scored_items():
        ma, mb = survey_majority(a, qid), survey_majority(b, qid)
        if ma is None or mb is None:
            continue
        answers.append(ma)
        majorities.append(mb)
        distances.append(get_item(qid).max_distance)
    return 100.0 * alignment_from_arrays(answers, majorities, distances)


def similarity_matrix(countries: tuple[str, ...]) -> list[list[float]]:
    """Pairwise similarity (x100); the diagonal is 100."""
    return [[country_similarity(a, b) for b in countries] for a in countries]


def ranked_cultures(country: str, pool: tuple[str, ...] = PAPER_COUNTRIES) -> list[str]:
    """Other countries of `pool` from most to least similar to `country`.

    Similarities are ranked at the paper's precision (0.1, as in its country_similarity.json),
    ties kept in pool order, so the paper's Cross-Culture Thinking prompts come out unchanged.
    """
    code = get_country(country).code
    others = [c for c in pool if c != code]
    return sorted(others, key=lambda other: -round(country_similarity(code, other), 1))


def most_and_least_similar(country: str, k: int = 3) -> tuple[list[str], list[str]]:
    """The k most similar and k least similar of the paper's 18 countries (Cross-Culture Thinking).

    The pool is the paper's 18 countries for every target, MEX included, so that adding MEX does
    not change the paper's prompts for the other 18.
    """
    ranked = ranked_cultures(country)
    return ranked[:k], ranked[-k:][::-1]
