"""Country similarity: the paper's shipped table for its 18 countries, the survey for the rest.

Cross-Culture Thinking (P2) names the 3 most and the 3 least similar cultures. The paper's rule
(`cross_culture` in its `utils.py`): take the target's row of `country_similarity.json`, sort it
ascending by value with a stable sort (ties keep the file's key order); the first three are the
least similar, in that order; the last three read from the end (last, second to last, third to
last) are the most similar.
"""

from __future__ import annotations

from functools import cache

from culturespa.countries import PAPER_COUNTRIES, get_country
from culturespa.scoring import alignment_from_arrays
from culturespa.survey import get_item, scored_items, shipped_country_similarity, survey_majority

SIMILARITY_DECIMALS = 1
"""The shipped file's precision (x100, one decimal); rows computed for other countries match it."""


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
    """Pairwise similarity (x100) computed from the survey; the diagonal is 100."""
    return [[country_similarity(a, b) for b in countries] for a in countries]


def similarity_row(country: str) -> dict[str, float]:
    """{other country: similarity x100} over the paper's 18, in the shipped file's key order.

    The paper's 18 countries take their row of the shipped `country_similarity.json` as it is.
    A country without a row there (MEX) gets one computed from the survey, rounded as the file
    is, with the keys in the paper's country order (the file's order).
    """
    code = get_country(country).code
    shipped = shipped_country_similarity()
    if code in shipped:
        return {other: float(value) for other, value in shipped[code].items() if other != code}
    return {
        other: round(country_similarity(code, other), SIMILARITY_DECIMALS)
        for other in PAPER_COUNTRIES
        if other != code
    }


def most_and_least_similar(country: str, k: int = 3) -> tuple[list[str], list[str]]:
    """(k most similar, most first; k least similar, least first) by the paper's rule."""
    row = similarity_row(country)
    ascending = sorted(row, key=row.__getitem__)  # stable: ties stay in the row's key order
    return ascending[::-1][:k], ascending[:k]
