"""`make loop` (`culturespa loop`, recipes/loop.py -> culturespa.loop), the whole CultureSPA loop: its config, what it runs and what it skips on a
rerun (resume), its refusal of a folder made with other settings, the run comparison used for the
determinism check, and the pieces it adds elsewhere (the stratified subset after the filter, the
loss curve). The loop itself on a real model is measured in docs/loop.md, not here: CI runs the tiny
smoke flow only."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from culturespa.errors import CulturespaError
from culturespa.pluralise.filter import stratified_subset
from culturespa.pluralise.questions import Question, question_id
from culturespa.survey.items import TOPIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "recipes" / "loop" / "default.yaml"
COUNTRIES = ["USA", "CHN", "NGA", "DEU", "BRA"]


@pytest.fixture(scope="module")
def loop():
    """The loop's pieces as one namespace, as `recipes/loop.py` runs them."""
    from types import SimpleNamespace

    from culturespa.loop import compare, config, layout, main

    return SimpleNamespace(
        main=main.main,
        load_loop_config=config.load_loop_config,
        check_manifest=config.check_manifest,
        derived_data_config=config.derived_data_config,
        Layout=layout.Layout,
        compare_runs=compare.compare_runs,
    )


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in root.rglob("*")
    }


def write(path: Path, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_shipped_config_and_overrides(loop, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = loop.load_loop_config(CONFIG, {"per_topic": 4, "eval_limit": None})
    assert config.countries == COUNTRIES  # the demo's countries
    assert config.per_topic == 4 and config.eval_limit is None and config.seed == 42
    assert config.eval_task == "wvs_culture_aware" and config.eval_backend == "culturespa-hf"
    # The data config the loop derives passes build-data's own checks and carries the loop's
    # model, countries, seed and subset.
    derived = loop.derived_data_config(config, loop.Layout(Path("runs/x")))
    assert derived["filter"]["per_topic"] == 4 and derived["countries"] == COUNTRIES
    assert derived["output_dir"] == "runs/x/data" and derived["model"]["name"] == "default"
    assert derived["questions_file"] == "package:released"
    assert derived["answer"]["cross_culture_thinking"] is False


def test_config_errors_name_the_key(loop, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = yaml.safe_load(CONFIG.read_text())
    for change, message in (
        ({"per_topics": 3}, "per_topics"),
        ({"countries": ["XYZ"]}, "XYZ"),
        ({"eval_task": "wvs_culture_aware_usa"}, "eval_task"),  # a task, not a group
        ({"models": ["base", "merged"]}, "models"),
        ({"stages": ["eval", "deploy"]}, "stages"),
        ({"per_topic": 0}, "per_topic"),
        ({"data_config": "nope.yaml"}, "data_config"),
        ({"seed": "abc"}, "seed"),
    ):
        path = tmp_path / "loop.yaml"
        path.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(CulturespaError, match=message):
            loop.load_loop_config(path, {})


def fake_run(out: Path, rows: dict[str, int]) -> None:
    """A run folder whose data are built, the joint adapter and USA's trained, base evaluated."""
    write(out / "data" / "sft" / "README.md")
    write(out / "data" / "sft" / "culture_joint.jsonl", "{}\n" * sum(rows.values()))
    for cc, n in rows.items():
        write(out / "data" / "sft" / "culture_specific" / f"{cc}.jsonl", "{}\n" * n)
    write(out / "train" / "culture_joint" / "culturespa_training.json", "{}")
    write(out / "train" / "culture_specific" / "USA" / "culturespa_training.json", "{}")
    write(out / "train" / "culture_specific" / "CHN" / "adapter_config.json", "{}")  # killed run
    write(out / "eval" / "base" / "org__m" / "results_2026-01-01.json", "{}")


def test_a_rerun_skips_what_is_complete_and_runs_the_rest(loop, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    config = loop.load_loop_config(CONFIG, {"output_dir": str(out)})
    loop.check_manifest(loop.Layout(out), config)  # the loop's record of its folder
    fake_run(out, {"USA": 3, "CHN": 2, "NGA": 0, "DEU": 1, "BRA": 4})
    before = snapshot(tmp_path)
    assert loop.main(["--config", str(CONFIG), "--output-dir", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert snapshot(tmp_path) == before  # a dry run writes nothing
    assert "data: skipped" in printed
    assert "train/culture_joint: skipped (adapter complete)" in printed
    assert "train/culture_specific/USA: skipped (adapter complete)" in printed
    assert "train/culture_specific/NGA: skipped (no training rows for NGA)" in printed
    runs = [line for line in printed.splitlines() if line.startswith("would run:")]
    assert all(line.split()[3:5] == ["-m", "culturespa.cli.main"] for line in runs)  # no clone file
    trained = [line.rsplit("--countries ", 1)[1] for line in runs if " train " in line]
    assert trained == ["CHN", "DEU", "BRA"]  # CHN's folder lacks its last file: trained again
    assert "eval/base: skipped" in printed
    evaluated = [line for line in runs if " eval " in line]
    assert "--peft" in evaluated[0] and "--log-samples" in evaluated[0]
    assert all("--adapters" in line for line in evaluated[1:])
    specific = [line.split("--countries ")[1].split()[0] for line in evaluated[1:]]
    assert specific == ["USA", "CHN", "NGA", "DEU", "BRA"]  # a dry run assumes every adapter
    assert all("--seed 42" in line for line in runs)


def test_the_stages_flag_and_estimates(loop, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    argv = ["--config", str(CONFIG), "--output-dir", str(tmp_path / "r"), "--dry-run"]
    assert loop.main([*argv, "--stages", "data", "--per-topic", "10"]) == 0
    printed = capsys.readouterr().out
    # 10 per topic x 13 topics, each asked culture-unaware and for 5 countries
    assert "10 kept questions per topic, 780 prompts" in printed
    assert "estimate" in printed and "train LoRA" not in printed
    assert loop.main([*argv, "--stages", "deploy"]) == 2


def test_the_old_config_name_is_the_default_config(loop, monkeypatch):
    monkeypatch.chdir(ROOT)
    old = loop.load_loop_config(ROOT / "recipes" / "loop" / "smollm2-135m-instruct.yaml", {})
    by_name = loop.load_loop_config("default", {})
    assert old == by_name and old.output_dir == "runs/loop/smollm2-135m-instruct"


def test_the_settings_record_holds_what_fixes_results_not_where_things_run(loop, monkeypatch):
    from culturespa.loop.config import settings_record

    monkeypatch.chdir(ROOT)
    record = settings_record(loop.load_loop_config("default", {}))
    # The keys a `make loop` folder recorded before the run-shape fields existed: a folder made
    # then resumes now.
    assert set(record) == {
        "countries", "data_config", "data_config_sha256", "device", "eval_backend",
        "eval_batch_size", "eval_limit", "eval_task", "joint_recipe", "joint_recipe_sha256",
        "model", "per_topic", "seed", "specific_recipe", "specific_recipe_sha256", "survey",
    }  # fmt: skip
    shaped = loop.load_loop_config("default", {"stages": ["eval"], "output_dir": "elsewhere"})
    assert settings_record(shaped) == record


def test_the_subcommand_and_the_module_print_the_loop_help():
    import subprocess
    import sys

    for argv in (
        ["-m", "culturespa.loop.main", "--help"],
        ["-m", "culturespa.cli.main", "loop", "-h"],
    ):
        proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "--config" in proc.stdout and "--stages" in proc.stdout


def test_the_summary_finds_rows_by_their_identity_not_their_label(loop, monkeypatch):
    from types import SimpleNamespace

    from culturespa.loop.summary import compare_pair, summary_rows
    from culturespa.report.rows import Row

    monkeypatch.chdir(ROOT)
    config = loop.load_loop_config(CONFIG, {})
    # Labels that say nothing of the kind: only `adapter_kind`, template and way tell them apart.
    rows = [
        Row("same", "culture_aware", "loglik", model="m", adapter_kind="specific"),
        Row("same", "culture_aware", "rev", model="m", adapter_kind="base"),
        Row("same", "culture_unaware", "loglik", model="m", adapter_kind="base"),
        Row("same", "culture_aware", "loglik", model="m", adapter_kind="joint"),
        Row("same", "culture_aware", "loglik", model="m", adapter_kind="base"),
        Row("survey", "", "", rule="uniform"),
    ]
    found = summary_rows(config, SimpleNamespace(rows=rows))
    assert list(found) == ["base", "joint", "specific"]
    assert [found[k] for k in found] == [rows[4], rows[3], rows[0]]
    first, second = compare_pair(config)
    assert [r for r in rows if first(r)] == [rows[4]] and [r for r in rows if second(r)] == [
        rows[3]
    ]
    demo = loop.load_loop_config("demo", {})  # base only: culture-unaware vs culture-aware
    first, second = compare_pair(demo)
    assert [r for r in rows if first(r)] == [rows[2]] and [r for r in rows if second(r)] == [
        rows[4]
    ]


def test_a_folder_made_with_other_settings_is_refused(loop, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    config = loop.load_loop_config(CONFIG, {"output_dir": str(out)})
    loop.check_manifest(loop.Layout(out), config)  # records the settings
    write(out / "data" / "questions" / "filtered.jsonl")
    argv = ["--config", str(CONFIG), "--output-dir", str(out), "--dry-run"]
    assert loop.main([*argv, "--per-topic", "7"]) == 2
    assert "per_topic" in capsys.readouterr().err
    assert loop.main(argv) == 0  # the same settings resume


def test_compare_runs_data_bytes_and_adapter_tensors(loop, tmp_path, capsys):
    from safetensors.numpy import save_file

    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32)}
    for name in ("one", "two"):
        write(tmp_path / name / "data" / "sft" / "culture_joint.jsonl", '{"x": 1}\n')
        folder = tmp_path / name / "train" / "culture_joint"
        folder.mkdir(parents=True)
        save_file(tensors, str(folder / "adapter_model.safetensors"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert loop.main(["--compare", str(one), str(two)]) == 0
    assert "identical (2 tensors, bit for bit)" in capsys.readouterr().out
    changed = dict(tensors, b=np.array([1, 1, 1, 1.5], np.float32))
    save_file(changed, str(two / "train" / "culture_joint" / "adapter_model.safetensors"))
    write(two / "data" / "sft" / "culture_joint.jsonl", '{"x": 2}\n')
    assert loop.main(["--compare", str(one), str(two)]) == 1
    printed = capsys.readouterr().out
    assert "DIFFERENT (largest absolute difference 0.5)" in printed
    assert "DIFFERENT" in printed.split("data/sft/culture_joint.jsonl")[0].splitlines()[-1]


def questions(per_topic: int) -> list[Question]:
    out = []
    for topic in TOPIC_NAMES[:3]:
        for i in range(per_topic):
            text = f"{topic} question {i}?"
            out.append(Question(question_id(topic, text, ("a", "b")), topic, text, ("a", "b")))
    return out


def test_stratified_subset_is_the_smallest_hashes_per_topic_in_file_order():
    kept = questions(10)
    subset, info = stratified_subset(kept, 4, seed=42)
    # The rule, stated independently: per topic, the 4 questions whose SHA-1 of
    # "<seed>:<question id>" is smallest; the subset keeps the input order.
    expected = []
    for topic in TOPIC_NAMES[:3]:
        ids = [q.question_id for q in kept if q.topic == topic]
        expected += sorted(ids, key=lambda i: hashlib.sha1(f"42:{i}".encode()).hexdigest())[:4]
    assert {q.question_id for q in subset} == set(expected)
    assert subset == [q for q in kept if q.question_id in set(expected)]
    assert Counter(q.topic for q in subset) == {t: 4 for t in TOPIC_NAMES[:3]}
    assert info["questions"] == 12 and info["per_topic"] == 4
    # Another seed draws another subset; a topic with fewer keeps all of them.
    assert stratified_subset(kept, 4, seed=1)[0] != subset
    assert len(stratified_subset(kept, 50, seed=42)[0]) == 30


def test_filter_stage_takes_the_subset_after_the_rules(tmp_path):
    from culturespa.pluralise.config import config_from_dict
    from culturespa.pluralise.pipeline import run_pipeline

    raw = tmp_path / "q.jsonl"
    lines = []
    for topic in TOPIC_NAMES[:2]:
        # Three duplicates first: a limit before the filter would keep one question of them.
        lines += [{"topic": topic, "question": f"{topic} same?", "options": ["a", "b"]}] * 3
        lines += [
            {"topic": topic, "question": f"{topic} {i}?", "options": ["a", "b"]} for i in range(5)
        ]
    raw.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    config = config_from_dict(
        {"model": "unused", "output_dir": str(tmp_path / "out"), "countries": ["USA"],
         "questions_file": str(raw), "filter": {"per_topic": 4}}
    )  # fmt: skip
    summary = run_pipeline(config, backend=object(), stages=("generate", "filter"))["filter"]
    assert summary["kept"] == 12 and summary["subset"] == 8
    kept = [
        json.loads(x)
        for x in (tmp_path / "out/questions/filtered.jsonl").read_text().split("\n")
        if x
    ]
    assert Counter(q["topic"] for q in kept) == {TOPIC_NAMES[0]: 4, TOPIC_NAMES[1]: 4}
    report = json.loads((tmp_path / "out/questions/filter_report.json").read_text())
    assert report["subset"]["topics"] == {TOPIC_NAMES[0]: 4, TOPIC_NAMES[1]: 4}
    assert "Subset after the filter" in (tmp_path / "out/questions/filter_report.md").read_text()


def test_loss_history_and_its_plot(tmp_path):
    from culturespa.report.loss_history import LossPoint, read_loss_history
    from culturespa.report.plots import plot_training_loss

    state = {
        "log_history": [
            {"loss": 2.0, "step": 1, "epoch": 0.5, "learning_rate": 0.0},
            {"loss": 1.5, "step": 2, "epoch": 1.0},
            {"train_loss": 1.75, "step": 2, "epoch": 1.0},  # the summary entry: no "loss"
        ]
    }
    write(tmp_path / "adapter" / "trainer_state.json", json.dumps(state))
    points = read_loss_history(tmp_path / "adapter")
    assert points == [LossPoint(1, 0.5, 2.0), LossPoint(2, 1.0, 1.5)]
    path = plot_training_loss({"joint": points, "USA": points[:1]}, tmp_path / "loss.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(CulturespaError, match="no trainer state"):
        read_loss_history(tmp_path / "nothing")


def test_listed_positions_of_survey_answers():
    from culturespa.report.analysis import listed_positions

    # Q1 lists its options 1..4 (code 3 is the 3rd listed); Q94 lists 0..2 (code 0 is the 1st
    # listed, code 2 the 3rd); None is a reply that is no option.
    answers = {"USA": {"Q1": 3, "Q94": 0}, "CHN": {"Q94": 2, "Q1": None}}
    assert listed_positions(answers) == {3: 2, 1: 1, None: 1}


def test_listed_positions_of_training_answers_and_their_shares(tmp_path):
    from culturespa.loop.summary import training_positions
    from culturespa.loop.summary_cells import position_cells
    from culturespa.pluralise.build import training_row

    def question(name: str, options: list[str], first: int) -> Question:
        return Question(name, TOPIC_NAMES[0], f"{name}?", tuple(options), first)

    yes_no = question("q1", ["Yes", "Somewhat", "No"], 1)
    from_zero = question("q0", ["Never", "Sometimes", "Often"], 0)
    ten = question("q10", [f"o{n}" for n in range(1, 11)], 1)
    write(
        tmp_path / "questions" / "filtered.jsonl",
        "".join(json.dumps(q.as_dict()) + "\n" for q in (yes_no, from_zero, ten)),
    )
    rows = [
        training_row(yes_no, "USA", 3, "culture", "culture_joint"),  # 3rd listed
        training_row(yes_no, "CHN", 3, "culture", "culture_joint"),  # 3rd listed
        training_row(from_zero, "USA", 0, "culture", "culture_joint"),  # numbered from 0: 1st
        training_row(ten, "NGA", 10, "culture", "culture_joint"),  # the 10th listed
    ]
    write(tmp_path / "sft" / "culture_joint.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    counts = training_positions(tmp_path)
    assert counts == {3: 2, 1: 1, 10: 1}
    # 1st, 2nd, 3rd, 4th, 5th or later, no option
    assert position_cells(counts) == ["25.0%", "0.0%", "50.0%", "0.0%", "25.0%", "0.0%"]
    assert position_cells({2: 1, None: 1})[5] == "50.0%"  # a reply that is no option
    assert training_positions(tmp_path / "nothing") == {}


def test_the_demo_and_default_loop_configs_ask_the_demo_countries():
    """The demo's countries have one home (`DEMO_COUNTRIES`): the loop's default, and the two
    named configs that say they ask the demo's countries."""
    from culturespa.loop.config import LoopConfig
    from culturespa.packaged import recipes_root
    from culturespa.survey.countries import DEMO_COUNTRIES

    for name in ("demo", "default"):
        config = yaml.safe_load((recipes_root() / "loop" / f"{name}.yaml").read_text())
        assert tuple(config["countries"]) == DEMO_COUNTRIES, name
    default = next(f for f in dataclasses.fields(LoopConfig) if f.name == "countries")
    assert tuple(default.default_factory()) == DEMO_COUNTRIES == ("USA", "CHN", "NGA", "DEU", "BRA")


def test_the_summary_puts_every_way_side_by_side_with_changes_against_the_same_way(
    loop, monkeypatch
):
    """The debiased loop's summary: each way's rows, each adapter's paired change against the base
    model asked the same way (never another way's), and which listed option the answers are."""
    from types import SimpleNamespace

    from culturespa.loop.ways_summary import rows_by_way, way_changes, way_lines
    from culturespa.report.rows import Row
    from culturespa.survey.items import get_item, items_with_data

    monkeypatch.chdir(ROOT)
    config = loop.load_loop_config("debiased", {})
    assert [g for g in config.eval_groups] == [
        "wvs_culture_aware", "wvs_perm_culture_aware", "wvs_cal_culture_aware"
    ]  # fmt: skip
    listing = {
        q: [o.code for o in get_item(q).listing()] for q in sorted(items_with_data("USA"))[:20]
    }
    first = {"USA": {q: codes[0] for q, codes in listing.items()}}  # the first listed option
    second = {"USA": {q: codes[1] for q, codes in listing.items()}}  # the second listed option

    def row(way, kind, answers):
        return Row("m", "culture_aware", way, answers=answers, model="m", adapter_kind=kind)

    rows = [
        row("loglik", "base", first), row("loglik", "joint", second),
        row("perm", "base", first), row("perm", "joint", first),
        row("cal", "base", second), row("rev", "joint", first),  # rev is not evaluated here
    ]  # fmt: skip
    ways = rows_by_way(config, SimpleNamespace(rows=rows))
    assert {w: list(r) for w, r in ways.items()} == {
        "loglik": ["base", "joint"], "perm": ["base", "joint"], "cal": ["base"]
    }  # fmt: skip
    changes = way_changes(ways, seed=0)
    assert changes["perm"]["joint"].average == (0.0, 0.0, 0.0)  # the same answers as its base
    assert changes["loglik"]["joint"].average[0] != 0.0  # first -> second listed option
    assert changes["cal"] == {}
    text = "\n".join(way_lines(list(config.countries), ways, changes))
    perm_joint = next(line for line in text.splitlines() if "permuted" in line and "joint" in line)
    assert "| 0.00 [0.00, 0.00] | 100.0% | 0.0% |" in perm_joint
    loglik_joint = next(
        line for line in text.splitlines() if "paper's way" in line and "joint" in line
    )
    assert "| 0.0% | 100.0% | 0.0% |" in loglik_joint  # all second listed


def test_a_killed_adapter_is_trained_again_from_empty_only_in_culturespas_folder(
    loop, tmp_path, monkeypatch
):
    """A killed training's folder (no run record yet) is emptied before it is trained again when
    culturespa's training made it; the user's files of a folder the loop adopted with
    --overwrite stay (training then writes only its own names beside them)."""
    from culturespa.loop.stages import Loop
    from culturespa.output_folder import MANIFEST_NAME

    monkeypatch.chdir(ROOT)
    config = loop.load_loop_config(CONFIG, {"output_dir": str(tmp_path / "run")})
    ours, mine = tmp_path / "ours", tmp_path / "mine"
    write(ours / MANIFEST_NAME, '{"written_by": "culturespa", "files": []}')
    write(ours / "checkpoint-1" / "adapter_model.safetensors")
    write(mine / "notes.txt", "the user's notes\n")
    Loop(config, dry_run=True)._fresh(ours)
    assert (ours / "checkpoint-1").is_dir()  # a dry run changes nothing
    stages = Loop(config, overwrite=True)
    stages._fresh(ours)
    stages._fresh(mine)
    assert not ours.exists() and (mine / "notes.txt").read_text() == "the user's notes\n"
