"""Survey folders written by hand for the tests: the shipped questionnaire and self-alignment
examples, with shares and similarities of the test's own (countries outside the shipped 19)."""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "wvs"


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
