from __future__ import annotations

import pytest

from culturespa.countries import ALL_COUNTRIES, PAPER_COUNTRIES
from culturespa.similarity import country_similarity, most_and_least_similar, ranked_cultures
from culturespa.survey import shipped_country_similarity


def test_similarity_from_survey_matches_the_shipped_file():
    shipped = shipped_country_similarity()
    assert set(shipped) == set(PAPER_COUNTRIES)
    for a, row in shipped.items():
        for b, value in row.items():
            assert country_similarity(a, b) == pytest.approx(value, abs=0.1), (a, b)


def test_rankings_match_the_shipped_file():
    shipped = shipped_country_similarity()
    for code, row in shipped.items():
        assert ranked_cultures(code) == sorted(row, key=lambda other: -row[other])


def test_symmetry_and_mex_row():
    assert country_similarity("USA", "CHN") == pytest.approx(country_similarity("CHN", "USA"))
    assert country_similarity("USA", "USA") == pytest.approx(100.0)
    for other in ALL_COUNTRIES:
        assert 0 < country_similarity("MEX", other) <= 100
    similar, different = most_and_least_similar("MEX")
    assert len(similar) == len(different) == 3 and "MEX" not in similar + different
