"""Cross-Culture Thinking's similar and different cultures, tested against the paper's rule.

The rule (the paper's `utils.cross_culture`, restated in issue 11): take the target's row of the
shipped country_similarity.json, sort it ascending by value with a stable sort (ties keep the
file's key order); the first three are the least similar, in that order; the last three, read
from the end, are the most similar. The expected prompts below are built from the JSON file and
the paper's wording directly, without culturespa's similarity code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturespa.countries import ALL_COUNTRIES, PAPER_COUNTRIES
from culturespa.prompts import render
from culturespa.similarity import country_similarity, most_and_least_similar, similarity_row

DATA = Path(__file__).resolve().parents[1] / "data" / "wvs" / "country_similarity.json"
DEMONYM = {
    "USA": "American", "CAN": "Canadian", "BOL": "Bolivian", "BRA": "Brazilian",
    "GBR": "British", "NLD": "Dutch", "DEU": "German", "UKR": "Ukrainian", "CHN": "Chinese",
    "RUS": "Russian", "IND": "Indian", "THA": "Thai", "KEN": "Kenyan", "NGA": "Nigerian",
    "ETH": "Ethiopian", "ZWE": "Zimbabwean", "AUS": "Australian", "NZL": "New Zealand",
    "MEX": "Mexican",
}  # fmt: skip
CCT_SENTENCE = (
    "Before you respond, take a moment to think about how {} culture is similar to {}, {}, and "
    "{} cultures, and how {} culture is different from {}, {}, and {} cultures."
)


def papers_rule(row: dict[str, float]) -> tuple[list[str], list[str]]:
    """(most similar, least similar) as the paper's script computes them."""
    keys = [k for k, _ in sorted(row.items(), key=lambda kv: kv[1])]
    return [keys[-1], keys[-2], keys[-3]], [keys[0], keys[1], keys[2]]


def expected_sentence(code: str, row: dict[str, float]) -> str:
    similar, different = papers_rule(row)
    x = DEMONYM[code]
    return CCT_SENTENCE.format(
        x, *(DEMONYM[c] for c in similar), x, *(DEMONYM[c] for c in different)
    )


@pytest.mark.parametrize("code", PAPER_COUNTRIES)
def test_p2_prompt_is_the_papers_for_every_paper_country(code):
    row = json.loads(DATA.read_text(encoding="utf-8"))[code]
    system = render("cross_culture_thinking", "Q1", code).system
    assert system.endswith(" " + expected_sentence(code, row))
    assert render("cct_self_alignment", "Q1", code).system == system


def test_brazil_names_nigerian_not_new_zealand_culture():
    # The example issue 11 quotes from the paper's scripts.
    assert render("cross_culture_thinking", "Q1", "BRA").system.endswith(
        "how Brazilian culture is different from Indian, Zimbabwean, and Nigerian cultures."
    )


def test_ties_keep_the_files_key_order():
    # BRA's row holds ties (CHN = AUS = 56.4, NGA = NZL = 56.1, BOL = GBR = 58.1): the stable
    # ascending sort keeps the file's order among them, so the least similar read NGA before NZL.
    row = json.loads(DATA.read_text(encoding="utf-8"))["BRA"]
    assert row["NGA"] == row["NZL"] and list(row).index("NGA") < list(row).index("NZL")
    similar, different = most_and_least_similar("BRA")
    assert different == ["IND", "ZWE", "NGA"]
    assert similar == ["USA", "UKR", "KEN"]


def test_paper_countries_use_the_shipped_row_unchanged():
    shipped = json.loads(DATA.read_text(encoding="utf-8"))
    for code in PAPER_COUNTRIES:
        assert similarity_row(code) == shipped[code]


def test_mex_row_is_computed_from_the_survey_with_the_same_rule():
    row = similarity_row("MEX")
    assert list(row) == list(PAPER_COUNTRIES)  # file order: the paper's countries
    for other, value in row.items():
        assert value == round(country_similarity("MEX", other), 1)
        assert 0 < value <= 100
    assert most_and_least_similar("MEX") == papers_rule(row)
    system = render("cross_culture_thinking", "Q1", "MEX").system
    assert system.endswith(" " + expected_sentence("MEX", row))


def test_survey_similarity_is_close_to_the_shipped_file():
    # The shipped values are the same score at 0.1 precision; recomputed they agree to 0.1.
    shipped = json.loads(DATA.read_text(encoding="utf-8"))
    for a, row in shipped.items():
        for b, value in row.items():
            assert country_similarity(a, b) == pytest.approx(value, abs=0.1), (a, b)


def test_symmetry():
    assert country_similarity("USA", "CHN") == pytest.approx(country_similarity("CHN", "USA"))
    assert country_similarity("USA", "USA") == pytest.approx(100.0)
    for other in ALL_COUNTRIES:
        assert 0 < country_similarity("MEX", other) <= 100
