"""Country similarity: the survey's table where it has a row, computed from the survey elsewhere.

Cross-Culture Thinking (P2) names the 3 most and the 3 least similar cultures. The paper's rule
(`cross_culture` in its `utils.py`): take the target's row of `country_similarity.json`, sort it
ascending by value with a stable sort (ties keep the file's key order); the first three are the
least similar, in that order; the last three read from the end (last, second to last, third to
last) are the most similar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from culturespa.alignment import alignment_from_arrays
from culturespa.errors import CulturespaError
from culturespa.survey.countries import get_country
from culturespa.survey.folder import survey_cached, survey_label
from culturespa.survey.items import (
    get_item,
    scored_items,
    survey_country_similarity,
    survey_majority,
)

SIMILARITY_DECIMALS = 1
"""The shipped file's precision (x100, one decimal); rows computed for other countries match it."""


def answer_similarity(first: Mapping[str, int | None], second: Mapping[str, int | None]) -> float:
    """The paper's score (x100) between two sets of answers {item: option number}, on the items
    both answered (NaN if none): how alike two countries answer, by their majorities or by a
    model's answers for each."""
    a, b, spans = [], [], []
    for qid, answer in first.items():
        other = second.get(qid)
        if answer is None or other is None:
            continue
        a.append(answer)
        b.append(other)
        spans.append(get_item(qid).max_distance)
    return 100.0 * alignment_from_arrays(a, b, spans) if a else math.nan


@survey_cached
def country_similarity(first: str, second: str) -> float:
    """Alignment score (x100) between two countries' majority answers on items both surveyed."""
    a, b = get_country(first).code, get_country(second).code
    return answer_similarity(
        {qid: survey_majority(a, qid) for qid in scored_items()},
        {qid: survey_majority(b, qid) for qid in scored_items()},
    )


def similarity_matrix(countries: tuple[str, ...]) -> list[list[float]]:
    """Pairwise similarity (x100) computed from the survey; the diagonal is 100."""
    return [[country_similarity(a, b) for b in countries] for a in countries]


def similarity_row(country: str) -> dict[str, float]:
    """{other country: similarity x100} in the survey's `country_similarity.json` key order.

    A country with a row in that file takes it as it is (the paper's 18 in the shipped survey,
    every country in a built one). A country without one (MEX in the shipped survey) gets a row
    computed from the survey against the file's countries, rounded as the file is, in the
    file's order (the paper's country order in the shipped survey).
    """
    code = get_country(country).code
    rows = survey_country_similarity()
    if code in rows:
        return {other: float(value) for other, value in rows[code].items() if other != code}
    return {
        other: round(country_similarity(code, other), SIMILARITY_DECIMALS)
        for other in rows
        if other != code
    }


def most_and_least_similar(country: str, k: int = 3) -> tuple[list[str], list[str]]:
    """(k most similar, most first; k least similar, least first) by the paper's rule."""
    row = similarity_row(country)
    if len(row) < k:
        raise CulturespaError(
            f"cross-culture thinking names the {k} most and {k} least similar cultures; "
            f"{survey_label()} has {len(row)} other countries for {get_country(country).code}"
        )
    ascending = sorted(row, key=row.__getitem__)  # stable: ties stay in the row's key order
    return ascending[::-1][:k], ascending[:k]
