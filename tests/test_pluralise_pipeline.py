"""The whole flow: CLI on the tiny model, the training-set contract, shards, bad input, and
kill-and-resume of a real subprocess with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.pluralise_fakes import ScriptedBackend, ShuffledReplicas

from culturespa.cli.main import main
from culturespa.pluralise.config import config_from_dict, load_config
from culturespa.pluralise.pipeline import Run, run_pipeline
from culturespa.prompts.templates import USER_PLAIN, system_prompt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "generated" / "sample_questions.jsonl"
COUNTRIES = ["USA", "CHN", "NGA"]


def tiny_config(tmp_path: Path, model: str, out: Path, limit: int | None = None, **answer) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "data" / "tiny.yaml").read_text())
    data["model"]["name"] = str(model)
    data["output_dir"] = str(out)
    data["questions_file"] = str(SAMPLE)
    data["questions_limit_per_topic"] = limit
    data["answer"].update(answer)
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def result_files(out: Path) -> dict[str, bytes]:
    """Every file of a run except the wall-clock timings."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "timings.json"
    }


@pytest.mark.slow
def test_cli_end_to_end_on_tiny_model(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "run"
    assert main(["build-data", "--config", str(tiny_config(tmp_path, tiny_model_dir, out))]) == 0
    printed = capsys.readouterr().out
    for stage in ("[filter]", "[answer]", "[collect]", "[build]"):
        assert stage in printed
    from datasets import load_from_disk

    sft = out / "sft"
    assert (sft / "README.md").read_text().count("Source model") == 1
    collected = [
        json.loads(x) for x in (out / "collected" / "collected.jsonl").read_text().splitlines()
    ]
    for variant, source, kind in (
        ("culture_joint", "culture", "aware"),
        ("cross_culture_thinking_joint", "cross_culture_thinking", "cross_culture_thinking"),
    ):
        dataset = load_from_disk(str(sft / variant))
        assert list(dataset) == ["train"]
        rows = [json.loads(x) for x in (sft / f"{variant}.jsonl").read_text().splitlines()]
        assert (
            len(rows) == dataset["train"].num_rows == sum(r["variant"] == source for r in collected)
        )
        for row in rows:
            assert set(row) == {"messages", "country", "topic", "question_id", "variant"}
            system, user, assistant = row["messages"]
            assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
            assert system["content"] == system_prompt(kind, row["country"])
            assert user["content"].startswith(USER_PLAIN.split("{question}")[0])
            assert "#Options: 1." in user["content"] or "#Options: 0." in user["content"]
            assert assistant["content"].isdigit() and row["variant"] == variant
    for country in COUNTRIES:
        specific = load_from_disk(str(sft / "culture_specific" / country))["train"]
        lines = (sft / "culture_specific" / f"{country}.jsonl").read_text().splitlines()
        assert specific.num_rows == len(lines)
    answers = (out / "answers" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 39 * (1 + 2 * len(COUNTRIES))  # 39 questions kept from the sample
    # a second run finds everything done and changes nothing
    before = result_files(out)
    assert main(["build-data", "--config", str(tiny_config(tmp_path, tiny_model_dir, out))]) == 0
    assert result_files(out) == before


def scripted_config(out: Path, **extra) -> dict:
    return {
        "model": {"name": "scripted"},
        "output_dir": str(out),
        "countries": COUNTRIES,
        "generate": {"questions_per_topic": 3, "requests_per_round": 2},
        "answer": {"chunk_size": 10},
        **extra,
    }


def test_whole_flow_with_generation(tmp_path):
    backend = ScriptedBackend(valid_share=0.8)
    summaries = run_pipeline(config_from_dict(scripted_config(tmp_path / "r")), backend=backend)
    assert summaries["generate"]["written"] == 39
    assert summaries["filter"]["kept"] <= 39
    assert (tmp_path / "r" / "sft" / "culture_specific" / "NGA.jsonl").exists()
    assert summaries["build"]["culture_joint"] == summaries["collect"]["culture"]


def test_generation_on_a_real_model_is_bounded_and_logged(tmp_path, tiny_model_dir, capsys):
    # the random tiny model never closes a JSON question: stage 1 through the transformers
    # backend (response prefix continued, stop string, batched rounds) must give up cleanly
    data = yaml.safe_load((ROOT / "recipes" / "data" / "tiny.yaml").read_text())
    data.pop("questions_file")
    data["model"]["name"] = str(tiny_model_dir)
    data["output_dir"] = str(tmp_path / "gen")
    data["topics"] = ["Corruption", "Migration"]
    data["generate"]["max_new_tokens"] = 12
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["build-data", "generate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "too few usable JSON questions after 2 tries" in err and "valid ones are kept" in err
    log = [json.loads(x) for x in (tmp_path / "gen/questions/generation.log.jsonl").open()]
    records = [r for r in log if "topic" in r]
    assert len(records) == 2 * 2 * 2  # topics x questions_per_topic x max_attempts_per_question
    assert {r["round"] for r in records} == {0, 1} and not any(r["valid"] for r in records)
    assert all(r["reply"].startswith('{"question": "') for r in records)
    assert all("}" not in r["reply"][:-1] for r in records)  # a reply ends at its first "}"
    assert (tmp_path / "gen/questions/generated.jsonl").read_text() == ""


def test_replicas_give_the_files_of_one_process(tmp_path):
    """The whole flow with generation on 2 stand-in replicas that finish out of order: the answer
    stage's files are those of one backend in this process (generation is checked per group in
    test_pluralise_generate.py), and only the answer log's line order differs."""
    data = scripted_config(tmp_path / "one", questions_file=str(SAMPLE))
    run_pipeline(config_from_dict(data), backend=ScriptedBackend())
    data["output_dir"] = str(tmp_path / "two")
    run_pipeline(config_from_dict(data), backend=ShuffledReplicas(2))
    one, two = result_files(tmp_path / "one"), result_files(tmp_path / "two")
    log = "answers/answers.log.jsonl"
    assert one.keys() == two.keys() and one[log] != two[log]
    assert sorted(one.pop(log).splitlines()) == sorted(two.pop(log).splitlines())
    assert one == two


def test_changed_settings_are_refused(tmp_path):
    data = scripted_config(tmp_path / "r", questions_file=str(SAMPLE))
    Run(config_from_dict(data), backend=ScriptedBackend()).run_stage("filter")
    data["answer"] = {"chunk_size": 11}
    with pytest.raises(Exception, match="other settings"):
        Run(config_from_dict(data), backend=ScriptedBackend())


def test_a_folder_without_results_takes_the_fixed_settings(tmp_path):
    """A run that failed before its first result (e.g. a model that would not load) leaves only
    the manifest; the rerun with the config fixed is not refused for it."""
    data = scripted_config(tmp_path / "r", questions_file=str(SAMPLE))
    Run(config_from_dict(data), backend=ScriptedBackend())
    data["answer"] = {"chunk_size": 11}
    Run(config_from_dict(data), backend=ScriptedBackend())
    saved = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert saved["answer"]["chunk_size"] == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model: {name: x}\noutput_dir: o\ntemprature: 0.6\n",
            "unknown key(s) top level.temprature",
        ),
        ("model: {name: x, batchsize: 2}\noutput_dir: o\n", "unknown key(s) model.batchsize"),
        ("output_dir: o\n", "model is missing"),
        ("model: {name: x}\noutput_dir: o\ncountries: [USA, XYZ]\n", "unknown country code 'XYZ'"),
        (
            "model: {name: x}\noutput_dir: o\nanswer: {method: greedy}\n",
            'answer.method = "greedy": expected one of loglik, sample',
        ),
        (
            "model: {name: x}\noutput_dir: o\nanswer: {debias: shuffle}\n",
            'answer.debias = "shuffle": expected one of none, permute, calibrate',
        ),
        (
            "model: {name: x, backend: openai}\noutput_dir: o\nanswer: {debias: calibrate}\n",
            "answer.debias: calibrate with model.backend openai needs model.tokenizer",
        ),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path, capsys, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["build-data", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_broken_questions_file_is_reported_with_its_line(tmp_path, capsys):
    bad = tmp_path / "q.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + "\n{broken\n")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**scripted_config(tmp_path / "r"), "questions_file": str(bad)}))
    assert main(["build-data", "filter", "--config", str(path)]) == 2
    assert "q.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_config_keys_table_in_the_readme_matches_the_config(capsys):
    from culturespa.pluralise.config import config_reference

    readme = (ROOT / "culturespa" / "pluralise" / "README.md").read_text()
    table = readme.split("<!-- config-keys:start -->\n")[1].split("<!-- config-keys:end -->")[0]
    assert table == config_reference()
    assert main(["build-data", "--keys"]) == 0
    printed = capsys.readouterr().out
    assert printed == table and "| `generate.response_prefix` |" in printed
    assert main(["build-data"]) == 2  # no config: a one-line error that points to --keys
    assert "build-data --keys" in capsys.readouterr().err


def test_every_recipe_parses():
    recipes = sorted((ROOT / "recipes" / "data").glob("*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        config = load_config(path)
        assert config.model.name and config.countries


def _line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_gives_identical_files(tmp_path, tiny_model_dir):
    """Kill a real `culturespa build-data` process with SIGKILL several times, rerun, compare."""
    reference = tmp_path / "reference"
    config = load_config(tiny_config(tmp_path, tiny_model_dir, reference, limit=1, chunk_size=8))
    run_pipeline(config)
    killed = tmp_path / "killed"
    cfg = tiny_config(tmp_path, tiny_model_dir, killed, limit=1, chunk_size=8)
    command = [sys.executable, "-m", "culturespa.cli.main", "build-data", "--config", str(cfg)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = killed / "answers" / "answers.log.jsonl"
    total = 13 * 7  # one question per topic, 7 prompts each
    seen = []
    # kill points: during start-up, early in the answer stage, late in it, and in the last stages
    for threshold in (None, 16, 56, total):
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if threshold is None and (killed / "manifest.json").exists():
                break
            if threshold is not None and _line_count(log) >= threshold:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.append((proc.returncode, _line_count(log)))
    assert any(code == -signal.SIGKILL and 0 < lines < total for code, lines in seen), seen
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert result_files(killed) == result_files(reference)


def test_shard_flag_points_to_the_ray_section(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(scripted_config(tmp_path / "r", questions_file=str(SAMPLE))))
    assert main(["build-data", "answer", "--config", str(path), "--shard", "0/2"]) == 2
    err = capsys.readouterr().err
    assert "--shard was removed" in err and "ray: {replicas: N}" in err
    assert not (tmp_path / "r").exists()


def test_folders_with_shard_logs_are_refused(tmp_path):
    out = tmp_path / "r"
    (out / "answers").mkdir(parents=True)
    (out / "answers" / "answers.shard-00-of-02.log.jsonl").write_text("")
    data = scripted_config(out, questions_file=str(SAMPLE))
    with pytest.raises(Exception, match="logs of --shard runs"):
        Run(config_from_dict(data), backend=ScriptedBackend())
