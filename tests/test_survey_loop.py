"""A country outside the shipped 19 end to end on the tiny model: `culturespa loop` with a
survey folder (data -> culture-joint and culture-specific adapters -> evaluation -> report), and
`culturespa eval --adapters DIR --survey DIR` for that country.

The rules: every evaluation of the loop reads the survey folder's tasks (each task's
`dataset_kwargs.survey` names the folder, and only that folder's items are asked), the
culture-specific adapter is JPN's, and the report and the loop's summary have JPN rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.survey_folders import five_country_survey

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def survey(tmp_path):
    """The five-country survey folder; the shipped survey is in use again after the test."""
    yield five_country_survey(tmp_path / "survey")  # JPN asks Q1 and Q2 only
    from culturespa.survey.folder import use_survey_folder

    use_survey_folder(None)


def asked_items(results: Path) -> dict[str, set[str]]:
    """Per task of an lm-eval results file: the items its sample logs asked."""
    asked = {}
    for samples in results.parent.glob("samples_*.jsonl"):
        task = samples.name.removeprefix("samples_").rsplit("_", 1)[0]
        asked[task] = {json.loads(line)["doc"]["qid"] for line in samples.open() if line.strip()}
    return asked


def task_surveys(results: Path) -> set[str | None]:
    configs = json.loads(results.read_text())["configs"]
    return {c["dataset_kwargs"].get("survey") for c in configs.values()}


@pytest.mark.slow
def test_the_tiny_loop_trains_and_reports_a_country_outside_the_shipped_19(
    tmp_path, survey, capsys
):
    from culturespa.cli.main import main

    config = yaml.safe_load((ROOT / "recipes" / "loop" / "tiny.yaml").read_text())
    config.update({k: str(ROOT / config[k]) for k in ("data_config", "joint_recipe")})
    config.update(
        output_dir=str(tmp_path / "loop"), countries=["JPN"], survey=str(survey),
        specific_recipe=config["joint_recipe"],
    )  # fmt: skip
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["loop", "--config", str(path), "--limit", "2", "--per-topic", "1"]) == 0
    root = tmp_path / "loop"
    assert (root / "train" / "culture_joint" / "adapter_model.safetensors").is_file()
    index = json.loads((root / "train" / "culture_specific" / "adapters.json").read_text())
    assert list(index["adapters"]) == ["JPN"]
    results = sorted((root / "eval").rglob("results_*.json"))
    assert len(results) == 3  # base, joint, JPN's adapter
    for file in results:
        assert task_surveys(file) == {str(survey.resolve())}, file
        assert asked_items(file) == {"wvs_culture_aware_jpn": {"Q1", "Q2"}}, file
    summary = json.loads((root / "summary.json").read_text())
    assert set(summary["rows"]) == {"base", "joint", "specific"}
    for kind, row in summary["rows"].items():
        assert list(row["countries"]) == ["JPN"], kind
    leaderboard = json.loads((root / "report" / "leaderboard.json").read_text())
    assert {p["survey"] for p in leaderboard["runs"].values()} == {str(survey.resolve())}
    for row in leaderboard["rows"]:
        assert list(row["countries"]) == ["JPN"], row["method"]
    specific_adapters_by_hand(root / "train" / "culture_specific", survey, tmp_path, capsys)


def specific_adapters_by_hand(adapters: Path, survey: Path, tmp_path: Path, capsys) -> None:
    """`culturespa eval --adapters DIR --survey DIR --countries JPN` in a process that starts
    with the shipped survey (as a new one does); without --survey, one line and exit 2."""
    from culturespa.cli.main import main
    from culturespa.survey.folder import use_survey_folder

    use_survey_folder(None)
    out = tmp_path / "by_hand"
    argv = ["eval", "--adapters", str(adapters), "--tasks", "wvs_culture_aware", "--device", "cpu"]
    argv += ["--log-samples", "--output-path", str(out)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the adapter of JPN (Japan) has no task: the shipped survey lacks JPN" in err, err
    assert not out.exists()
    use_survey_folder(None)
    assert main([*argv, "--survey", str(survey), "--countries", "JPN"]) == 0
    (results,) = out.rglob("results_*.json")
    assert task_surveys(results) == {str(survey.resolve())}
    assert asked_items(results) == {"wvs_culture_aware_jpn": {"Q1", "Q2"}}
    config = json.loads(results.read_text())["config"]
    assert config["model_args"]["peft"] == str(adapters / "JPN")
