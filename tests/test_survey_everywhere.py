"""A survey folder of the user's countries works wherever the shipped 19 do: `demo --survey`,
`report` (it reads the survey its results files name), the data builder's `survey:` key and the
loop's. One hand-written folder of five countries, JPN and KOR outside the shipped 19.

The rules: `--country all` / `countries: all` is every country of that survey, in the country
table's order (the paper's 19 first, then by code); a report scores a run against the survey
folder its tasks name (`dataset_kwargs.survey`); results of two surveys, or of another survey
than `--survey`, are refused with one line; a missing folder or one of another shape is one
line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from support.survey_folders import five_country_survey

from culturespa.cli.main import main
from culturespa.errors import CulturespaError

ROOT = Path(__file__).resolve().parents[1]
DATE = "2024-01-01T00-00-00"
FIVE = ("USA", "CHN", "ARG", "JPN", "KOR")
"""'all' of the five-country folder (support.survey_folders): the paper's 19 first (USA, CHN),
then by code."""


@pytest.fixture
def survey(tmp_path):
    """The five-country survey folder; the shipped survey is in use again after the test."""
    yield five_country_survey(tmp_path / "survey")
    from culturespa.survey.folder import use_survey_folder

    use_survey_folder(None)


def write_results(
    folder: Path,
    survey: Path | None,
    answers: dict[str, dict[str, int]],
    sha256: str | None = None,
) -> Path:
    """An lm-eval results file of culture-aware log-likelihood tasks (one per country) whose
    configs name `survey` (and its content's `sha256`, as `culturespa tasks build` records it;
    None: a file from before that record), with sample logs of `answers`."""
    out = folder / "org__model"
    out.mkdir(parents=True)
    results, configs = {}, {}
    for code, by_item in answers.items():
        name = f"wvs_culture_aware_{code.lower()}"
        results[name] = {"alignment,none": 1.0}  # every answer below is the majority
        kwargs = {"way": "loglik", "template": "culture_aware", "country": code}
        kwargs.update({"survey": str(survey)} if survey else {})
        kwargs.update({"survey_sha256": sha256} if sha256 else {})
        configs[name] = {"dataset_kwargs": kwargs}
        lines = [
            json.dumps({"doc_id": i, "doc": {"qid": qid}, "alignment": {"answer": answer}})
            for i, (qid, answer) in enumerate(by_item.items())
        ]
        (out / f"samples_{name}_{DATE}.jsonl").write_text("\n".join(lines) + "\n")
    data = {"results": results, "configs": configs, "config": {"model_args": "pretrained=org/m"}}
    path = out / f"results_{DATE}.json"
    path.write_text(json.dumps(data))
    return path


def cells(report: Path, method_part: str) -> dict:
    """The per-country cells of the leaderboard row whose method contains `method_part`."""
    rows = json.loads((report / "leaderboard.json").read_text())["rows"]
    (row,) = [r for r in rows if method_part in r["method"]]
    return row["countries"]


def notes(report: Path) -> list[str]:
    return json.loads((report / "leaderboard.json").read_text())["notes"]


def one_line_exit_2(argv: list[str], capsys, message: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_report_scores_a_run_against_the_survey_its_tasks_name(tmp_path, survey, capsys):
    # The folder's majorities: JPN Q1 4, Q2 3; USA Q1 1. The sample logs answer them, so the
    # paper's score recomputed from them is 1 (a note says where it differs from the file's).
    write_results(tmp_path / "runs", survey, {"JPN": {"Q1": 4, "Q2": 3}, "USA": {"Q1": 1}})
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "-o", str(out), "--no-plots"]) == 0
    model = cells(out, "Culture-aware")
    assert list(model) == ["USA", "JPN"]
    assert model["JPN"]["ci"] == [1.0, 1.0] and model["JPN"]["n_items"] == 2
    assert not [n for n in notes(out) if "differs" in n], notes(out)
    ceiling = cells(out, "Own majority")
    assert list(ceiling) == ["USA", "JPN"] and ceiling["JPN"]["score"] == pytest.approx(1.0)
    payload = json.loads((out / "leaderboard.json").read_text())
    (provenance,) = payload["runs"].values()
    assert provenance["survey"] == str(survey.resolve())
    assert f"--survey {survey.resolve()}" in provenance["command"]
    page = (out / "index.html").read_text()
    assert "Japan" in page and str(survey.resolve()) in page


def test_report_refuses_runs_of_two_surveys_and_a_survey_other_than_given(tmp_path, survey, capsys):
    shipped = write_results(tmp_path / "shipped", None, {"USA": {"Q1": 1}})
    write_results(tmp_path / "mine", survey, {"JPN": {"Q1": 4}})
    out = tmp_path / "report"
    both = ["report", str(tmp_path / "shipped"), str(tmp_path / "mine"), "-o", str(out)]
    one_line_exit_2(both, capsys, "results of different surveys cannot be mixed in one report")
    other = ["report", str(shipped), "--survey", str(survey), "-o", str(out)]
    one_line_exit_2(other, capsys, "was made from the shipped survey, not from --survey")
    assert not out.exists()  # refused before the report folder is made


def test_report_of_a_moved_survey_folder_needs_survey(tmp_path, survey, capsys):
    gone = tmp_path / "gone"
    write_results(tmp_path / "runs", gone, {"JPN": {"Q1": 4, "Q2": 3}})
    out = tmp_path / "report"
    argv = ["report", str(tmp_path / "runs"), "-o", str(out), "--no-plots"]
    one_line_exit_2(argv, capsys, "which does not exist any more; pass --survey DIR")
    assert main([*argv, "--survey", str(survey)]) == 0  # the moved folder stands in
    assert cells(out, "Own majority")["JPN"]["score"] == pytest.approx(1.0)
    assert not [n for n in notes(out) if "differs" in n], notes(out)


def built_task_sha256(survey: Path, out: Path) -> str:
    """The content SHA-256 `culturespa tasks build` records in the tasks of `survey`."""
    assert main(["tasks", "build", "--survey", str(survey), "--out", str(out)]) == 0
    kwargs = yaml.safe_load((out / "loglik" / "wvs_culture_aware_jpn.yaml").read_text())[
        "dataset_kwargs"
    ]
    assert kwargs["survey"] == str(survey.resolve())
    return kwargs["survey_sha256"]


def rebuilt(folder: Path) -> None:
    """The same folder with other answers: JPN's Q1 majority is 3, not 4."""
    shares = json.loads((folder / "proportions_group_by_country.json").read_text())
    shares["JPN"]["Q1"] = {"3": 0.6, "4": 0.4}
    (folder / "proportions_group_by_country.json").write_text(json.dumps(shares))


def test_report_recognises_a_survey_folder_by_content(tmp_path, survey, capsys):
    sha256 = built_task_sha256(survey, tmp_path / "tasks")
    copy = tmp_path / "copy"
    shutil.copytree(survey, copy)
    (copy / "manifest.json").write_text("{}")  # provenance, not content: still the same survey
    assert built_task_sha256(copy, tmp_path / "copy_tasks") == sha256
    write_results(tmp_path / "runs", survey, {"JPN": {"Q1": 4, "Q2": 3}}, sha256)
    write_results(tmp_path / "runs_of_copy", copy, {"JPN": {"Q1": 4}}, sha256)
    out = tmp_path / "report"
    argv = ["report", str(tmp_path / "runs"), "-o", str(out), "--no-plots"]
    assert main([*argv, "--survey", str(copy)]) == 0  # the recorded folder still exists
    assert cells(out, "Own majority")["JPN"]["score"] == pytest.approx(1.0)
    shutil.rmtree(out)
    assert main([*argv[:2], str(tmp_path / "runs_of_copy"), *argv[2:]]) == 0  # one survey
    other = tmp_path / "other"
    shutil.copytree(survey, other)
    rebuilt(other)
    one_line_exit_2([*argv, "--survey", str(other)], capsys, "holds another survey; pass that")
    rebuilt(survey)  # a different survey at the recorded path
    one_line_exit_2(argv, capsys, f"{survey.resolve()}, which holds another survey now")
    one_line_exit_2([*argv, "--survey", str(survey)], capsys, "holds another survey; pass that")
    shutil.rmtree(out)
    assert main([*argv, "--survey", str(copy)]) == 0
    assert cells(out, "Own majority")["JPN"]["score"] == pytest.approx(1.0)  # the copy's Q1: 4
    # A results file from before the record is matched by path, as before.
    write_results(tmp_path / "old", survey, {"JPN": {"Q1": 3}})
    assert main(["report", str(tmp_path / "old"), "-o", str(tmp_path / "old_report")]) == 0
    one_line_exit_2(
        ["report", str(tmp_path / "old"), "--survey", str(copy), "-o", str(tmp_path / "r")],
        capsys, "not from --survey",
    )  # fmt: skip


def test_tasks_of_a_changed_survey_folder_and_a_damaged_record_are_one_line(
    tmp_path, survey, capsys
):
    from culturespa_tasks.utils import load_docs

    sha256 = built_task_sha256(survey, tmp_path / "tasks")
    docs = load_docs("culture_aware", "JPN", survey=str(survey), survey_sha256=sha256)
    assert sorted(docs["test"]["qid"]) == ["Q1", "Q2"]
    rebuilt(survey)
    with pytest.raises(CulturespaError, match="changed since its tasks were built"):
        load_docs("culture_aware", "JPN", survey=str(survey), survey_sha256=sha256)
    write_results(tmp_path / "runs", survey, {"JPN": {"Q1": 4}}, "not a hash")
    argv = ["report", str(tmp_path / "runs"), "-o", str(tmp_path / "report")]
    one_line_exit_2(argv, capsys, 'dataset_kwargs.survey_sha256 is "not a hash", not a SHA-256')


def test_report_of_a_country_the_survey_lacks_is_one_line(tmp_path, survey, capsys):
    write_results(tmp_path / "runs", None, {"JPN": {"Q1": 4}})  # names no survey: shipped
    argv = ["report", str(tmp_path / "runs"), "-o", str(tmp_path / "report")]
    one_line_exit_2(argv, capsys, "tasks ask about JPN (Japan), which the shipped survey lacks")
    one_line_exit_2([*argv, "--survey", str(tmp_path / "nope")], capsys, "does not exist")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    "shape", ["missing", "a-file", "no-shares", "unknown-country"], ids=lambda s: s
)
def test_demo_with_a_bad_survey_folder_is_one_line_and_writes_nothing(
    shape, tmp_path, survey, capsys
):
    folder = tmp_path / "bad"
    if shape == "a-file":
        folder.write_text("not a folder\n")
    elif shape != "missing":
        folder.mkdir()
        for path in survey.iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
        shares = folder / "proportions_group_by_country.json"
        shares.unlink() if shape == "no-shares" else shares.write_text('{"XYZ": {}}')
    message = {
        "missing": "does not exist",
        "a-file": "is a file, not a folder",
        "no-shares": "lacks proportions_group_by_country.json",
        "unknown-country": "'XYZ' is not a wave-7 country code",
    }[shape]
    out = tmp_path / "demo"
    argv = ["demo", "--model", "unused", "--survey", str(folder), "-o", str(out)]
    one_line_exit_2(argv, capsys, message)
    assert not out.exists()


@pytest.mark.slow
def test_demo_runs_every_country_of_a_survey(tiny_model_dir, tmp_path, survey, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir), "--survey", str(survey), "--countries", "all"]
    argv += ["--templates", "culture_aware", "--limit", "1", "-o", str(out), "--threads", "1"]
    assert main(argv) == 0
    (results,) = (out / "lm_eval").rglob("results_*.json")
    configs = json.loads(results.read_text())["configs"]
    assert sorted(configs) == sorted(f"wvs_culture_aware_{c.lower()}" for c in FIVE)
    assert {c["dataset_kwargs"]["survey"] for c in configs.values()} == {str(survey.resolve())}
    model = cells(out, "Culture-aware")
    assert list(model) == list(FIVE)


def test_build_data_config_takes_its_countries_and_prompts_from_the_survey(tmp_path, survey):
    from culturespa.pluralise.answer import plan_jobs
    from culturespa.pluralise.config import config_from_dict
    from culturespa.pluralise.questions import Question

    data = {"model": "default", "output_dir": str(tmp_path / "data"), "survey": str(survey)}
    config = config_from_dict({**data, "countries": "all"})
    assert config.countries == list(FIVE) and config.survey == str(survey.resolve())
    question = Question("q1", "Corruption", "Is it fine?", ("Yes", "No"), 1)
    jobs = {(j.kind, j.country): j for j in plan_jobs([question], ["JPN"], True)}
    system = jobs[("cross_culture_thinking", "JPN")].conversation()[0]["content"]
    # The paper's rule on JPN's row (ARG 10, CHN 70, KOR 80, USA 90, ascending): the last
    # three read from the end are the most similar, the first three the least.
    assert (
        "how Japanese culture is similar to American, South Korean, and Chinese cultures, and "
        "how Japanese culture is different from Argentine, Chinese, and South Korean cultures"
    ) in system
    with pytest.raises(CulturespaError, match=r"country JPN .* is not in the survey"):
        config_from_dict({**data, "survey": None, "countries": ["JPN"]})
    with pytest.raises(CulturespaError, match=r"config: survey: survey folder .* does not exist"):
        config_from_dict({**data, "survey": str(tmp_path / "nope")})


def loop_yaml(tmp_path: Path, **changes) -> Path:
    config = yaml.safe_load((ROOT / "recipes" / "loop" / "smollm2-135m-instruct.yaml").read_text())
    for key in ("data_config", "joint_recipe", "specific_recipe"):
        config[key] = str(ROOT / config[key])
    config.update(output_dir=str(tmp_path / "loop"), **changes)
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_loop_config_passes_its_survey_to_every_stage(tmp_path, survey, capsys):
    from culturespa.loop.config import derived_data_config, load_loop_config
    from culturespa.loop.main import main as loop_main
    from culturespa.loop.stages import Loop

    path = loop_yaml(tmp_path, survey=str(survey), countries="all")
    config = load_loop_config(path, {})
    assert config.countries == list(FIVE)
    loop = Loop(config, dry_run=True)
    data = derived_data_config(config, loop.layout)
    assert data["survey"] == str(survey.resolve()) and data["countries"] == list(FIVE)
    assert loop._eval_args()[-2:] == ["--survey", str(survey.resolve())]
    assert loop_main(["--config", str(path), "--dry-run", "--stages", "eval"]) == 0
    assert f"--survey {survey.resolve()}" in capsys.readouterr().out.replace("'", "")
    assert not (tmp_path / "loop").exists()  # a dry run writes nothing
    bad = loop_yaml(tmp_path, survey=str(tmp_path / "nope"), countries=["JPN"])
    assert loop_main(["--config", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config: survey: survey folder" in err, err


def test_a_loop_folder_refuses_a_survey_folder_whose_content_changed(tmp_path, survey):
    """The loop's record holds the survey folder's content hash: results made with one survey
    are never resumed with another at the same path; a copy at the same path is the same survey."""
    from culturespa.loop.config import check_manifest, load_loop_config
    from culturespa.loop.stages import Loop

    config = load_loop_config(loop_yaml(tmp_path, survey=str(survey), countries=["JPN"]), {})
    layout = Loop(config, dry_run=True).layout
    check_manifest(layout, config)
    layout.data.mkdir(parents=True)  # the folder now holds results of this survey
    recorded = json.loads(layout.manifest.read_text())["survey_sha256"]
    assert len(recorded) == 16
    copy = shutil.copytree(survey, tmp_path / "copy")
    shutil.rmtree(survey)
    shutil.copytree(copy, survey)  # the same files again: the same survey
    check_manifest(
        layout, load_loop_config(loop_yaml(tmp_path, survey=str(survey), countries=["JPN"]), {})
    )
    shares = json.loads((survey / "proportions_group_by_country.json").read_text())
    shares["JPN"]["Q1"] = {"1": 1.0}
    (survey / "proportions_group_by_country.json").write_text(json.dumps(shares))
    with pytest.raises(CulturespaError, match=r"other settings \(survey_sha256\)"):
        check_manifest(
            layout, load_loop_config(loop_yaml(tmp_path, survey=str(survey), countries=["JPN"]), {})
        )


@pytest.mark.slow
def test_build_data_runs_for_a_country_outside_the_shipped_19(tmp_path, tiny_model_dir, survey):
    """The whole builder on the tiny model for JPN and KOR of the survey folder: every stage
    runs, and the culture-specific set and the personas are those countries'."""
    from culturespa.prompts.templates import system_prompt
    from culturespa.survey.folder import use_survey_folder

    config = yaml.safe_load((ROOT / "recipes" / "data" / "tiny.yaml").read_text())
    config.update(
        model={**config["model"], "name": str(tiny_model_dir)},
        output_dir=str(tmp_path / "data"),
        questions_file=str(ROOT / "data" / "generated" / "sample_questions.jsonl"),
        questions_limit_per_topic=1,
        countries=["JPN", "KOR"],
        survey=str(survey),
    )
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["build-data", "--config", str(path)]) == 0
    sft = tmp_path / "data" / "sft"
    assert sorted(p.name for p in (sft / "culture_specific").glob("*.jsonl")) == [
        "JPN.jsonl",
        "KOR.jsonl",
    ]
    answers = [json.loads(x) for x in (tmp_path / "data" / "answers" / "answers.jsonl").open()]
    assert {a.get("country") for a in answers} >= {"JPN", "KOR"}
    use_survey_folder(survey)  # the personas of that survey's countries
    rows = [json.loads(x) for x in (sft / "culture_joint.jsonl").open()]
    assert rows, "the tiny model changed no answer with the persona: nothing to check"
    for row in rows:
        assert row["country"] in ("JPN", "KOR")
        assert row["messages"][0]["content"] == system_prompt("aware", row["country"])
