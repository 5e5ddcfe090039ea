"""Survey folders written by hand for the tests: the shipped questionnaire and self-alignment
examples, with shares and similarities of the test's own (countries outside the shipped 19)."""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "wvs"
FIVE_SHARES = {
    "USA": {"Q1": {"1": 0.6, "2": 0.4}, "Q2": {"2": 0.7, "1": 0.3}},
    "CHN": {"Q1": {"2": 0.8, "1": 0.2}, "Q2": {"2": 1.0}},
    "JPN": {"Q1": {"4": 0.5, "3": 0.3, "1": 0.2}, "Q2": {"3": 0.9, "1": 0.1}},
    "KOR": {"Q1": {"3": 1.0}, "Q2": {"1": 1.0}},
    "ARG": {"Q1": {"1": 1.0}, "Q2": {"4": 1.0}},
}
"""Five countries, JPN, KOR and ARG outside the shipped 19, with two items (Q1, Q2) each."""
FIVE_PAIRS = {
    ("JPN", "USA"): 90.0, ("JPN", "KOR"): 80.0, ("JPN", "CHN"): 70.0, ("JPN", "ARG"): 10.0,
    ("USA", "CHN"): 50.0, ("USA", "KOR"): 60.0, ("USA", "ARG"): 40.0,
    ("CHN", "KOR"): 75.0, ("CHN", "ARG"): 20.0, ("KOR", "ARG"): 30.0,
}  # fmt: skip
"""Their similarity scores, each pair once."""


def write_survey_folder(
    folder: Path,
    shares: dict[str, dict[str, dict[str, float]]],
    pairs: dict[tuple[str, str], float],
) -> Path:
    """A survey folder of `shares` ({country: {item: {option: share}}}) whose similarity file
    holds `pairs` ({(a, b): score}, both ways)."""
    folder.mkdir(parents=True)
    for name in ("wvs_questions.json", "self_alignment_examples.json"):
        (folder / name).write_bytes((SHIPPED / name).read_bytes())
    similarity: dict[str, dict[str, float]] = {code: {} for code in shares}
    for (a, b), value in pairs.items():
        similarity[a][b] = similarity[b][a] = value
    (folder / "proportions_group_by_country.json").write_text(json.dumps(shares))
    (folder / "country_similarity.json").write_text(json.dumps(similarity))
    return folder


def five_country_survey(folder: Path) -> Path:
    """The survey folder of `FIVE_SHARES` and `FIVE_PAIRS`."""
    return write_survey_folder(folder, FIVE_SHARES, FIVE_PAIRS)
