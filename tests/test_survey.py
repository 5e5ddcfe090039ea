from __future__ import annotations

import numpy as np
import pytest

from culturespa.errors import CulturespaError
from culturespa.survey.countries import ALL_COUNTRIES, PAPER_COUNTRIES, get_country, parse_countries
from culturespa.survey.items import (
    TOPIC_NAMES,
    all_items,
    get_item,
    items_with_data,
    scored_items,
    survey_distribution,
    survey_majority,
    survey_shares,
    topic_of,
)


def test_item_counts_and_exclusions():
    assert len(all_items()) == 291
    items = scored_items()
    assert len(items) == 259
    assert "Q223" not in items and "Q260" not in items and "Q234A" in items
    assert all(item.options for item in items.values())


@pytest.mark.parametrize(
    ("qid", "first"),
    [
        ("Q94", 0),
        ("Q105", 0),
        ("Q119", 0),
        ("Q122", 0),
        ("Q241", 0),
        ("Q249", 0),
        ("Q1", 1),
        ("Q106", 1),
        ("Q120", 1),
        ("Q250", 1),
    ],
)
def test_option_numbering(qid, first):
    item = get_item(qid)
    assert item.first_option == first
    assert item.option_numbers[0] == first
    assert item.options_text().startswith(f"{first}.")


def test_zero_based_items_match_survey_numbers():
    for code in ALL_COUNTRIES:
        for qid in items_with_data(code):
            item = get_item(qid)
            assert set(survey_shares(code, qid)) <= set(item.option_numbers), (code, qid)


def test_topics_cover_all_items():
    assert len(TOPIC_NAMES) == 13
    assert topic_of("Q1") == "Social Values, Attitudes & Stereotypes"
    assert topic_of("Q234A") == "Political Interest & Political Participation"
    assert topic_of("Q259") == "Political Culture & Political Regimes"
    counts = {name: 0 for name in TOPIC_NAMES}
    for item in scored_items().values():
        counts[item.topic] += 1
    assert all(counts.values())


def test_countries():
    assert len(ALL_COUNTRIES) == 19 and len(PAPER_COUNTRIES) == 18 and "MEX" not in PAPER_COUNTRIES
    assert get_country("usa").persona == "an American"
    assert get_country("NGA").persona == "a Nigerian"
    assert parse_countries("paper") == PAPER_COUNTRIES
    assert parse_countries("all") == ALL_COUNTRIES
    assert parse_countries("usa, CHN,usa") == ("USA", "CHN")
    with pytest.raises(CulturespaError, match="unknown country code 'XX'"):
        parse_countries("USA,XX")


WAVE7_V5_CODES = (
    "AND", "ARG", "ARM", "AUS", "BGD", "BOL", "BRA", "CAN", "CHL", "CHN", "COL", "CYP",
    "CZE", "DEU", "ECU", "EGY", "ETH", "GBR", "GRC", "GTM", "HKG", "IDN", "IRN", "IRQ",
    "JOR", "JPN", "KAZ", "KEN", "KGZ", "KOR", "LBN", "LBY", "MAC", "MAR", "MDV", "MEX",
    "MMR", "MNG", "MYS", "NGA", "NIC", "NIR", "NLD", "NZL", "PAK", "PER", "PHL", "PRI",
    "ROU", "RUS", "SGP", "SRB", "SVK", "THA", "TJK", "TUN", "TUR", "TWN", "UKR", "URY",
    "USA", "VEN", "VNM", "ZWE",
)  # fmt: skip
"""The 64 `B_COUNTRY_ALPHA` codes of the wave-7 file v5.0 (sources: the docstring of
culturespa/survey/countries.py); v6.0 adds IND and UZB."""


def test_the_country_table_is_the_wave7_file_s_countries():
    from culturespa.survey.countries import WAVE7_COUNTRIES

    assert len(WAVE7_V5_CODES) == 64
    assert sorted(WAVE7_COUNTRIES) == sorted([*WAVE7_V5_CODES, "IND", "UZB"])
    assert list(WAVE7_COUNTRIES)[:19] == list(ALL_COUNTRIES)  # the shipped 19 first
    assert get_country("GBR").name == "Great Britain"  # Northern Ireland is NIR
    assert get_country("NIR").persona == "a Northern Irish"
    assert get_country("MAR").name == "Morocco"  # the file's code, not the codebook's MOR


def test_majority_and_distribution():
    shares = survey_shares("USA", "Q1")
    assert survey_majority("USA", "Q1") == max(shares, key=shares.get)
    dist = survey_distribution("USA", "Q1")
    assert dist.shape == (4,) and np.isclose(dist.sum(), 1.0)
    assert np.argmax(dist) + 1 == survey_majority("USA", "Q1")
    zero_based = survey_distribution("USA", "Q94")
    assert len(zero_based) == len(get_item("Q94").options)


def test_missing_items_for_a_country():
    missing = [qid for qid in scored_items() if survey_majority("CHN", qid) is None]
    assert len(missing) == 37
    assert survey_distribution("CHN", missing[0]) is None
    assert len(items_with_data("CHN")) == 259 - 37


def test_unknown_items():
    with pytest.raises(CulturespaError, match="does not exist"):
        get_item("Q999")
    with pytest.raises(CulturespaError, match="excluded"):
        get_item("Q223")
