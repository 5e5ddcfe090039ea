from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturespa.cli.main import main

REFERENCE = Path(__file__).parent / "data" / "reference_generations"
UNAWARE = REFERENCE / "wvs_result_culture_unaware_0.json"


def test_score_prints_the_papers_numbers(capsys):
    assert main(["score", str(UNAWARE), "--country", "USA,CHN,NGA", "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    for expected in ("68.34", "62.19", "52.05"):
        assert expected in out


def test_score_all_writes_json_and_csv(tmp_path, capsys):
    out_json, out_csv = tmp_path / "s.json", tmp_path / "s.csv"
    files = [str(p) for p in sorted(REFERENCE.glob("*.json"))]
    code = main(
        [
            "score",
            *files,
            "--country",
            "all",
            "--bootstrap",
            "0",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
        ]
    )
    assert code == 0
    rows = json.loads(out_json.read_text())
    assert len(rows) == 4 * 19 + 4  # every file against every country, and each file's AVG
    usa = next(r for r in rows if r["country"] == "USA" and r["file"].endswith("aware_USA_0.json"))
    assert round(100 * usa["alignment"], 2) == 71.12
    assert out_csv.read_text().splitlines()[0].startswith("file,country,alignment")
    assert "AVG over the paper's 18 countries" in capsys.readouterr().out
    unaware_avg = next(r for r in rows if r["country"] == "AVG" and "unaware" in r["file"])
    assert round(100 * unaware_avg["alignment"], 2) == 62.36
    assert unaware_avg["ci_low"] is None  # --bootstrap 0: no interval, written as null


def test_score_prints_the_average_with_its_paired_interval(capsys):
    assert main(["score", str(UNAWARE), "--country", "paper", "--bootstrap", "1000"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "AVG over the paper's 18 countries" in ln)
    # 62.36 (the mean of the 18 countries' published-style scores), paired interval ~[59.4, 65.4]
    assert "= 62.36 (95% CI [59." in line and ", 65." in line


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"Q_id": "Q1", "answer": "1"', "malformed JSON at line 1"),
        ('{"Q1": "1"}', "expected a list of objects"),
        ("[1, 2]", "entry 0: expected an object"),
        ('[{"answer": "1"}]', "entry 0: missing field 'Q_id'"),
        ('[{"Q_id": "Q1"}]', "entry 0 (Q1): missing field 'answer'"),
        ('[{"Q_id": "Q999", "answer": "1"}]', "entry 0: WVS item 'Q999' does not exist"),
        (
            '[{"Q_id": "Q1", "answer": "1"}, {"Q_id": "Q1", "answer": "2"}]',
            "entry 1: item Q1 appears twice",
        ),
    ],
)
def test_bad_files_give_one_line_errors_and_write_nothing(tmp_path, capsys, content, message):
    path = _write(tmp_path, "bad.json", content)
    out_json = tmp_path / "out.json"
    assert main(["score", str(path), "--json", str(out_json)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out_json.exists()


def test_missing_file_and_unknown_country(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    assert main(["score", str(UNAWARE), "--country", "XYZ"]) == 2
    assert "unknown country code 'XYZ'" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "culturespa.cli.main", "score", str(UNAWARE), "--bootstrap", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "68.34" in result.stdout


def test_score_has_culture_specific_alignment_and_steerability(tmp_path, capsys):
    import math

    from culturespa.replies import parse_replies, read_reply_file
    from culturespa.survey import culture_specific_items, get_item, survey_majority

    aware = REFERENCE / "wvs_result_culture_aware_USA_0.json"
    out = tmp_path / "s.json"
    argv = ["score", str(aware), "--country", "USA", "--unaware", str(UNAWARE), "--json", str(out)]
    assert main([*argv, "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "steerability against wvs_result_culture_unaware_0.json" in printed
    records = json.loads(out.read_text())
    (row,) = [r for r in records if r.get("kind") != "steerability"]
    # The paper's formula on the culture-specific items alone, written out here.
    answers = parse_replies(read_reply_file(aware))
    specific = [q for q in culture_specific_items("USA") if answers.get(q) is not None]
    a = [answers[q] for q in specific]
    m = [survey_majority("USA", q) for q in specific]
    n = [get_item(q).max_distance for q in specific]
    expected = 1 - math.dist(a, m) / math.hypot(*n)
    assert row["alignment_specific"] == pytest.approx(expected)
    assert row["n_specific"] == len(specific)
    (steer,) = [r for r in records if r.get("kind") == "steerability"]
    unaware = score_of(UNAWARE, "USA")
    assert steer["delta"] == pytest.approx(row["alignment"] - unaware, abs=0.02)  # shared items
    assert steer["closer"] + steer["away"] <= 1 and steer["delta_ci"][0] < steer["delta"]


def score_of(path: Path, country: str) -> float:
    from culturespa.replies import parse_replies, read_reply_file
    from culturespa.scoring import score_country

    return score_country(parse_replies(read_reply_file(path)), country, n_resamples=0).alignment
