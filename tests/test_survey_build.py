"""`culturespa survey build` on small synthetic files in the official wave-7 CSV layout.

The rules, stated here and checked by hand-made files (never real WVS data):
- a share is an option's (weighted) count over the country's whole (weighted) sample: missing
  answers (negative codes, empty cells) stay in the denominator and get no share, as the
  paper's shipped shares do (USA's are counts over its 2,596 respondents);
- shares are listed largest first, equal shares in the order the options first appear;
- an item no respondent of a country answered is `{}` for it;
- the similarity is the paper's score x100 (one decimal) between two countries' majorities:
  1 - ||a - b|| / ||n - 1|| over the items both answered;
- any bad input is one line naming the file, exit 2, and no folder written or changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from culturespa.cli.main import main
from culturespa.survey.countries import COUNTRIES, PAPER_COUNTRIES, WAVE7_COUNTRIES, get_country

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "wvs"
HEADER = ["B_COUNTRY_ALPHA", "S007", "W_WEIGHT", "Q1", "Q94", "Q2"]
ROWS = [
    ["USA", "1", "2", "1", "0", "1"],
    ["USA", "2", "1", "1", "0", "2"],
    ["USA", "3", "1", "2", "3", "-1"],
    ["USA", "4", "0.5", "-1", "-2", "-5"],
    ["JPN", "5", "1", "4", "0", "-4"],
    ["JPN", "6", "3", "3", "1", "-4"],
]


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def build(tmp_path: Path, *flags: str, source: Path | None = None) -> Path:
    source = source or write_csv(tmp_path / "wvs.csv", HEADER, ROWS)
    out = tmp_path / "survey"
    assert main(["survey", "build", "--wvs", str(source), "--out", str(out), *flags]) == 0
    return out


def read(folder: Path, name: str):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def test_unweighted_shares_are_counts_over_all_respondents(tmp_path):
    shares = read(build(tmp_path, "--unweighted"), "proportions_group_by_country.json")
    assert list(shares) == ["USA", "JPN"]  # the country table's order: the paper's 19 first
    usa, jpn = shares["USA"], shares["JPN"]
    assert usa["Q1"] == {"1": 2 / 4, "2": 1 / 4}  # the -1 stays in the denominator
    assert usa["Q94"] == {"0": 2 / 4}  # 3 is no option of Q94 (0..2): no share
    assert list(usa["Q2"].items()) == [("1", 1 / 4), ("2", 1 / 4)]  # a tie: first seen first
    assert list(jpn["Q1"].items()) == [("4", 1 / 2), ("3", 1 / 2)]
    assert jpn["Q2"] == {}  # not asked in JPN (-4 only)
    assert usa["Q3"] == {} and len(usa) == 259  # every scored item, absent ones empty


def test_weighted_shares_use_w_weight(tmp_path):
    shares = read(build(tmp_path), "proportions_group_by_country.json")
    usa, jpn = shares["USA"], shares["JPN"]  # weights 2, 1, 1, 0.5 and 1, 3
    assert usa["Q1"] == pytest.approx({"1": 3 / 4.5, "2": 1 / 4.5})
    assert list(usa["Q2"]) == ["1", "2"] and usa["Q2"]["1"] == pytest.approx(2 / 4.5)
    assert list(jpn["Q1"].items()) == [("3", 3 / 4), ("4", 1 / 4)]
    assert list(jpn["Q94"].items()) == [("1", 3 / 4), ("0", 1 / 4)]


def test_similarity_manifest_and_copied_files(tmp_path):
    source = write_csv(tmp_path / "wvs.csv", HEADER, ROWS)
    out = build(tmp_path, "--unweighted", source=source)
    # Majorities USA Q1=1, Q94=0; JPN Q1=4, Q94=0 (Q2 not asked in JPN). Q1 spans 3, Q94 2.
    expected = round(100 * (1 - math.sqrt(3**2 + 0**2) / math.sqrt(3**2 + 2**2)), 1)
    assert read(out, "country_similarity.json") == {
        "USA": {"JPN": expected},
        "JPN": {"USA": expected},
    }
    manifest = read(out, "manifest.json")
    assert manifest["source_file"] == "wvs.csv"
    assert manifest["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["weighting"] == "none"
    assert manifest["countries"]["USA"]["respondents"] == 4
    assert manifest["countries"]["JPN"]["respondents"] == 2
    assert manifest["countries"]["JPN"]["items_with_answers"] == 2  # Q2 not asked there
    assert manifest["items_in_file"] == 3 and "Q3" in manifest["items_missing_from_file"]
    assert manifest["codes_outside_options"] == {"USA": {"Q94": {"3": 1.0}}}
    for name in ("wvs_questions.json", "self_alignment_examples.json"):
        assert (out / name).read_bytes() == (SHIPPED / name).read_bytes()


def test_semicolons_a_bom_and_latin1_on_request(tmp_path):
    (tmp_path / "a").mkdir()
    source = write_csv(tmp_path / "a" / "wvs.csv", HEADER, ROWS, delimiter=";")
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    semicolon = read(build(tmp_path / "a", source=source), "proportions_group_by_country.json")
    latin1 = tmp_path / "b.csv"
    latin1.write_bytes(b"B_COUNTRY_ALPHA,NOTE,Q1\nUSA,caf\xe9,2\nUSA,,1\n")
    (tmp_path / "b").mkdir()
    built = build(tmp_path / "b", "--unweighted", "--encoding", "latin-1", source=latin1)
    assert semicolon["USA"]["Q1"] == pytest.approx({"1": 3 / 4.5, "2": 1 / 4.5})
    assert read(built, "proportions_group_by_country.json")["USA"]["Q1"] == {"2": 0.5, "1": 0.5}


def test_a_new_build_replaces_the_folders_files(tmp_path):
    out = build(tmp_path, "--unweighted")
    (out / "notes.txt").write_text("mine\n")
    build(tmp_path)
    assert read(out, "manifest.json")["weighting"] == "W_WEIGHT"
    assert (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(p.name for p in SHIPPED.iterdir()), "manifest.json", "notes.txt"]
    )


BAD = {
    "no-country-column": (b"COUNTRY,W_WEIGHT,Q1\nUSA,1,1\n", [], "no B_COUNTRY_ALPHA column"),
    "none-of-our-items": (b"B_COUNTRY_ALPHA,W_WEIGHT,X1\nUSA,1,1\n", [], "none of the 259"),
    "not-utf8": (b"B_COUNTRY_ALPHA,NOTE,Q1\nUSA,caf\xe9,1\n", ["--unweighted"], "not UTF-8"),
    "empty": (b"", [], "the file is empty"),
    "header-only": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\n", [], "no respondents"),
    "country-without-answers": (
        b"B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\nUSA,1,1,2\nJPN,1,-1,-2\nJPN,1,-4,\n",
        [],
        "country JPN has no usable answers",
    ),
    "weights-add-to-zero": (
        b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,0,1\n",
        [],
        "W_WEIGHT add up to 0",
    ),
    "no-weight-column": (b"B_COUNTRY_ALPHA,Q1\nUSA,1\n", [], "no W_WEIGHT column"),
    "weight-text": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,x,1\n", [], "line 2: W_WEIGHT is 'x'"),
    "weight-negative": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,-1,1\n", [], "W_WEIGHT is '-1'"),
    "unknown-country": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nXYZ,1,1\n", [], "'XYZ' is not a wave-7"),
    "answer-not-a-code": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,1,1.5\n", [], "Q1 holds '1.5'"),
    "short-row": (b"B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,1\n", [], "line 2 has 2 fields"),
    "duplicate-column": (b"B_COUNTRY_ALPHA,Q1,Q1\nUSA,1,1\n", [], "Q1 appears twice"),
    "unknown-encoding": (b"B_COUNTRY_ALPHA,Q1\nUSA,1\n", ["--encoding", "klingon"], "klingon"),
}


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("name", BAD)
def test_bad_file_is_one_line_exit_2_and_writes_nothing(name, tmp_path, capsys):
    content, flags, message = BAD[name]
    source = tmp_path / "wvs.csv"
    source.write_bytes(content)
    old = tmp_path / "old"  # a survey folder from an earlier build stays as it was
    old.mkdir()
    (old / "manifest.json").write_text("{}\n")
    before = snapshot(tmp_path)
    for out in (tmp_path / "new", old):
        code = main(["survey", "build", "--wvs", str(source), "--out", str(out), *flags])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert message in err and (str(source) in err or name == "unknown-encoding"), err
        assert snapshot(tmp_path) == before


def test_a_missing_file_or_a_folder_is_named(tmp_path, capsys):
    for source, message in ((tmp_path / "nope.csv", "does not exist"), (tmp_path, "is a folder")):
        assert main(["survey", "build", "--wvs", str(source), "--out", str(tmp_path / "o")]) == 2
        assert f"{source} {message}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_output_that_cannot_be_a_folder_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    import culturespa.survey.folder as folder

    source = write_csv(tmp_path / "wvs.csv", HEADER, ROWS)
    (tmp_path / "file.txt").write_text("a file\n")
    shipped = tmp_path / "data" / "wvs"  # stands for the installed survey, never touched here
    shipped.mkdir(parents=True)
    monkeypatch.setattr(folder, "shipped_survey_file", lambda name: shipped / name)
    before = snapshot(tmp_path)
    cases = (("file.txt", "is a file"), ("file.txt/survey", "is a file"), ("data/wvs", "shipped"))
    for out, message in cases:
        argv = ["survey", "build", "--wvs", str(source), "--out", str(tmp_path / out)]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def sample_size(shares: dict[str, dict[str, float]]) -> int:
    """The smallest respondent count that makes every share a whole number of respondents."""
    values = np.array([v for item in shares.values() for v in item.values()])
    for k in range(1, 1_000):  # the smallest share is k respondents out of n
        n = round(k / values.min())
        if np.allclose(values * n, np.round(values * n), atol=1e-6):
            return n
    raise AssertionError("no sample size")


def synthetic_rows(code: str, shares: dict[str, dict[str, float]], items: list[str]) -> list:
    """Respondents whose answers have exactly these shares, merged into weighted rows.

    Each item's options, in the file's order, take consecutive runs of the n respondents (the
    rest answer -1, missing); respondents whose answers agree on every item become one row
    whose W_WEIGHT is their number.
    """
    n = sample_size(shares)
    runs, cuts = {}, {0, n}
    for qid in items:
        start, runs[qid] = 0, []
        for option, share in shares[qid].items():
            count = round(share * n)
            runs[qid].append((start, start + count, option))
            start += count
            cuts.add(start)
    points = sorted(cuts)
    rows = []
    for low, high in pairwise(points):
        answers = [next((o for a, b, o in runs[q] if a <= low < b), "-1") for q in items]
        rows.append([code, str(high - low), *answers])
    return rows


def test_a_file_drawn_from_the_shipped_shares_gives_back_the_shipped_survey(tmp_path):
    shipped = read(SHIPPED, "proportions_group_by_country.json")
    items = list(shipped["USA"])
    rows = [row for code, shares in shipped.items() for row in synthetic_rows(code, shares, items)]
    source = write_csv(tmp_path / "wvs.csv", ["B_COUNTRY_ALPHA", "W_WEIGHT", *items], rows)
    out = build(tmp_path, source=source)
    built = read(out, "proportions_group_by_country.json")
    assert set(built) == set(shipped) == set(COUNTRIES)
    for code, by_item in shipped.items():
        for qid, shares in by_item.items():
            assert list(built[code][qid]) == list(shares), (code, qid)  # majority first
            assert built[code][qid] == pytest.approx(shares, abs=1e-12), (code, qid)
    similarity = read(out, "country_similarity.json")
    for code, row in read(SHIPPED, "country_similarity.json").items():
        for other, value in row.items():
            if other != code:
                assert similarity[code][other] == pytest.approx(value, abs=0.1), (code, other)


PAPER_DEMONYMS = {
    "USA": "an American", "CAN": "a Canadian", "BOL": "a Bolivian", "BRA": "a Brazilian",
    "GBR": "a British", "NLD": "a Dutch", "DEU": "a German", "UKR": "a Ukrainian",
    "CHN": "a Chinese", "RUS": "a Russian", "IND": "an Indian", "THA": "a Thai",
    "KEN": "a Kenyan", "NGA": "a Nigerian", "ETH": "an Ethiopian", "ZWE": "a Zimbabwean",
    "AUS": "an Australian", "NZL": "a New Zealand",
}  # fmt: skip
"""The paper's `country2culture_dict` and `a_an_dict` (its utils.py)."""


def test_country_table_covers_wave_7_and_keeps_the_papers_personas():
    assert len(WAVE7_COUNTRIES) >= 64 and set(COUNTRIES) < set(WAVE7_COUNTRIES)
    for code in PAPER_COUNTRIES:
        assert get_country(code).persona == PAPER_DEMONYMS[code]
    assert [get_country(c).persona for c in ("jpn", "ARG", "UZB", "KOR")] == [
        "a Japanese",
        "an Argentine",
        "an Uzbek",
        "a South Korean",
    ]
    for code, country in WAVE7_COUNTRIES.items():
        assert len(code) == 3 and code.isupper() and country.name and country.demonym
        if code not in COUNTRIES:  # 'an' before a vowel sound; 'Uruguayan' starts with 'yoo'
            vowel_sound = country.demonym[0] in "AEIOU" and country.demonym != "Uruguayan"
            assert country.article == ("an" if vowel_sound else "a"), code
