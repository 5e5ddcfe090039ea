"""A survey folder in use (`--survey DIR`, `culturespa tasks build`, `eval --survey`), on folders
built from the hand-made file of tests/test_survey_build.py or written by hand.

The rules: `--country all` is every country of the folder; a country's cross-culture prompt
takes its row of the folder's similarity table by the paper's rule (ascending sort; the last
three, read from the end, are the most similar, the first three the least); a task folder
built for a survey names the folder, and its docs come from there; a bad folder is one line,
exit 2, and the shipped survey stays in use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from test_survey_build import HEADER, ROWS, SHIPPED, build, read, write_csv

from culturespa.cli.main import main
from culturespa.errors import CulturespaError

MORE_ROWS = [["KOR", "7", "1", "2", "1", "2"], ["ARG", "8", "1", "3", "2", "3"]]
"""Two more countries: with USA and JPN, four, the fewest cross-culture thinking can name."""


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

    source = write_csv(tmp_path / "w.csv", HEADER, ROWS + MORE_ROWS)
    survey = build(tmp_path, "--unweighted", source=source)
    out = tmp_path / "tasks"
    assert main(["tasks", "build", "--survey", str(survey), "--out", str(out)]) == 0
    yamls = sorted(p.relative_to(out).as_posix() for p in out.rglob("wvs_*.yaml"))
    # 6 ways x 6 templates x 4 countries, a group per way and template (USA is the only paper
    # country), the leaderboard.
    assert len(yamls) == 6 * 6 * 4 + 6 * 6 + 1
    assert {"loglik/wvs_culture_aware_jpn.yaml", "gen/wvs_gen_culture_aware_arg.yaml"} <= set(yamls)
    assert "wvs_leaderboard.yaml" in yamls  # the ways in their subfolders, the leaderboard on top
    config = yaml.safe_load((out / "loglik/wvs_culture_aware_jpn.yaml").read_text())
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
    (out / "loglik/wvs_culture_aware_nic.yaml").write_text("an older build's task\n")
    (out / "wvs_culture_aware_nic.yaml").write_text("a task of a build before the subfolders\n")
    (out / "notes.txt").write_text("mine\n")
    assert main(["tasks", "build", "--survey", str(survey), "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("wvs_*.yaml")) == yamls
    assert (out / "notes.txt").read_text() == "mine\n"
    capsys.readouterr()
    assert main(["tasks", "build", "--survey", str(survey)]) == 2
    assert "usage: culturespa tasks build --survey DIR --out TASKDIR" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_runs_the_tasks_of_a_survey_folder(tiny_model_dir, tmp_path, shipped_survey_after):
    source = write_csv(tmp_path / "w.csv", HEADER, ROWS + MORE_ROWS)
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
