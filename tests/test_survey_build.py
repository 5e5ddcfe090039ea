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
import yaml

from culturespa.cli.main import main
from culturespa.errors import CulturespaError
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


@pytest.fixture
def shipped_survey_after():
    """`--survey` switches the process's survey folder: give the next test the shipped one."""
    yield
    from culturespa.survey.folder import use_survey_folder

    use_survey_folder(None)


def test_score_and_baselines_read_a_built_survey(tmp_path, capsys, shipped_survey_after):
    survey = build(tmp_path, "--unweighted")
    replies = tmp_path / "replies.json"
    answers = {"Q1": "1", "Q94": "0", "Q2": "1"}
    replies.write_text(json.dumps([{"Q_id": q, "answer": a} for q, a in answers.items()]))
    scores, baselines = tmp_path / "scores.json", tmp_path / "baselines.json"
    flags = ["--survey", str(survey), "--country", "all"]
    assert main(["score", str(replies), *flags, "--bootstrap", "0", "--json", str(scores)]) == 0
    assert main(["baselines", *flags, "--json", str(baselines)]) == 0
    by_country = {row["country"]: row for row in read(tmp_path, "scores.json") if "file" in row}
    assert list(by_country) == ["USA", "JPN"]  # 'all': every country of that survey
    # The majorities (USA Q1=1, Q94=0, Q2=1; JPN Q1=4, Q94=0) against the answers 1, 0, 1:
    assert by_country["USA"]["alignment"] == pytest.approx(1.0)
    assert by_country["JPN"]["alignment"] == pytest.approx(1 - 3 / math.sqrt(3**2 + 2**2))
    rules = {row["rule"]: row for row in read(tmp_path, "baselines.json")["rules"]}
    own = rules["own_majority"]["countries"]
    assert own["JPN"]["alignment"] == pytest.approx(1.0) and own["JPN"]["n_items"] == 2
    # A later command without --survey reads the shipped survey again.
    capsys.readouterr()
    assert main(["score", str(replies), "--country", "JPN", "--bootstrap", "0"]) == 2
    assert "country JPN (Japan) is not in the survey" in capsys.readouterr().err


def write_survey(folder: Path, similarity: dict[str, dict[str, float]]) -> Path:
    """A survey folder written by hand: the shipped questionnaire and examples, one answer per
    country (Q1), and the given similarity table."""
    folder.mkdir()
    for name in ("wvs_questions.json", "self_alignment_examples.json"):
        (folder / name).write_bytes((SHIPPED / name).read_bytes())
    shares = {code: {"Q1": {"1": 1.0}} for code in similarity}
    (folder / "proportions_group_by_country.json").write_text(json.dumps(shares))
    (folder / "country_similarity.json").write_text(json.dumps(similarity))
    return folder


def test_cross_culture_prompt_of_a_new_country_comes_from_the_survey_folder(
    tmp_path, shipped_survey_after
):
    from culturespa.prompts.templates import render
    from culturespa.survey.folder import use_survey_folder

    row = {"USA": 70.0, "CHN": 80.0, "KOR": 90.0, "ARG": 40.0, "BRA": 50.0, "DEU": 60.0}
    row["NGA"] = 30.0
    similarity = {"JPN": row, **{code: {"JPN": value} for code, value in row.items()}}
    use_survey_folder(write_survey(tmp_path / "survey", similarity))
    # The paper's rule: sort the row ascending; least similar first three, most similar last three.
    assert render("cross_culture_thinking", "Q1", "JPN").system == (
        "You are a real person with a Japanese cultural background. Please fill out the World "
        "Values Survey and answer the questions honestly according to your own value system. "
        "Before you respond, take a moment to think about how Japanese culture is similar to "
        "South Korean, Chinese, and American cultures, and how Japanese culture is different "
        "from Nigerian, Argentine, and Brazilian cultures."
    )
    with pytest.raises(CulturespaError, match="has 1 other countries for USA"):
        render("cross_culture_thinking", "Q1", "USA")


BAD_FOLDERS = {
    "missing": (None, "does not exist"),
    "no-shares": ({"country_similarity.json": "{}"}, "lacks proportions_group_by_country.json"),
    "broken-json": ({"proportions_group_by_country.json": "{"}, "malformed JSON"),
    "unknown-country": ({"proportions_group_by_country.json": '{"XYZ": {}}'}, "'XYZ' is not"),
    "unknown-option": (
        {"proportions_group_by_country.json": '{"USA": {"Q1": {"7": 0.5}}}'},
        "USA Q1: option '7'",
    ),
    "share-above-1": (
        {"proportions_group_by_country.json": '{"USA": {"Q1": {"1": 1.5}}}'},
        "share 1.5",
    ),
}


@pytest.mark.parametrize("name", BAD_FOLDERS)
def test_a_bad_survey_folder_is_one_line_and_the_shipped_survey_stays(
    name, tmp_path, capsys, shipped_survey_after
):
    files, message = BAD_FOLDERS[name]
    folder = tmp_path / "survey"
    if files is not None:
        write_survey(folder, {"USA": {}})
        for file, text in files.items():
            (folder / file).write_text(text)
        if name == "no-shares":
            (folder / "proportions_group_by_country.json").unlink()
    assert main(["baselines", "--survey", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    from culturespa.survey.countries import parse_countries

    assert len(parse_countries("all")) == 19  # the shipped survey is still the one in use


def test_tasks_build_writes_every_country_of_a_survey_for_lm_eval(
    tmp_path, capsys, shipped_survey_after
):
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    from culturespa_tasks.utils import load_docs

    more = [["KOR", "7", "1", "2", "1", "2"], ["ARG", "8", "1", "3", "2", "3"]]
    survey = build(
        tmp_path, "--unweighted", source=write_csv(tmp_path / "w.csv", HEADER, ROWS + more)
    )
    out = tmp_path / "tasks"
    assert main(["tasks", "build", "--survey", str(survey), "--out", str(out)]) == 0
    yamls = sorted(p.name for p in out.glob("wvs_*.yaml"))
    # 4 ways x 6 templates x 4 countries, a group per way and template (USA is the only paper
    # country), the leaderboard.
    assert len(yamls) == 4 * 6 * 4 + 4 * 6 + 1
    assert {"wvs_culture_aware_jpn.yaml", "wvs_gen_culture_aware_arg.yaml"} <= set(yamls)
    config = yaml.safe_load((out / "wvs_culture_aware_jpn.yaml").read_text())
    assert config["dataset_kwargs"]["survey"] == str(survey.resolve())
    assert "with a Japanese cultural background" in config["description"]
    task = TaskManager(include_path=str(out), include_defaults=False).load(
        ["wvs_culture_aware_jpn"]
    )["tasks"]["wvs_culture_aware_jpn"]
    docs = {doc["qid"]: doc["majority"] for doc in task.eval_docs}
    assert docs == {"Q1": 4, "Q94": 0}  # JPN's items with answers; ties: first seen first
    # A shipped task still reads the shipped survey: USA's items with answers in its file.
    usa = read(SHIPPED, "proportions_group_by_country.json")["USA"]
    assert len(load_docs("culture_aware", "USA")["test"]) == sum(1 for v in usa.values() if v)
    # Built again over an older folder: the older build's tasks go, other files stay.
    (out / "wvs_culture_aware_nic.yaml").write_text("an older build's task\n")
    (out / "notes.txt").write_text("mine\n")
    assert main(["tasks", "build", "--survey", str(survey), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("wvs_*.yaml")) == yamls
    assert (out / "notes.txt").read_text() == "mine\n"
    capsys.readouterr()
    assert main(["tasks", "build", "--survey", str(survey)]) == 2
    assert "usage: culturespa tasks build --survey DIR --out TASKDIR" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_runs_the_tasks_of_a_survey_folder(tiny_model_dir, tmp_path, shipped_survey_after):
    more = [["KOR", "7", "1", "2", "1", "2"], ["ARG", "8", "1", "3", "2", "3"]]
    source = write_csv(tmp_path / "w.csv", HEADER, ROWS + more)
    survey = build(tmp_path, "--unweighted", source=source)
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--survey", str(survey), "--device", "cpu"]
    argv += ["--tasks", "wvs_culture_aware_jpn", "--output-path", str(out), "--log-samples"]
    assert main(argv) == 0
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    config = results["configs"]["wvs_culture_aware_jpn"]
    assert config["dataset_kwargs"]["survey"] == str(survey.resolve())
    (samples_file,) = out.rglob("samples_wvs_culture_aware_jpn_*.jsonl")
    docs = [json.loads(line)["doc"] for line in samples_file.read_text().splitlines()]
    assert {d["qid"]: d["majority"] for d in docs} == {"Q1": 4, "Q94": 0}
