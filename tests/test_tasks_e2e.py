"""lm-eval end to end on a tiny Llama (offline): the commands of docs/lm_eval.md, results JSON, sample logs."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from culturespa.cli.main import main
from culturespa.prompts.templates import render
from culturespa_tasks import TASK_DIR

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")

LL, GEN = "wvs_culture_aware_usa", "wvs_gen_culture_aware_usa"
LL_METRICS = ("alignment", "alignment_w1", "alignment_jsd", "majority_match")
GEN_METRICS = ("alignment", "alignment_w1", "alignment_jsd", "coverage")
SHORT_REPLIES = "max_gen_toks=8"  # the tasks allow 256 new tokens; a random model fills them all


def _results_and_samples(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    (results_file,) = out.rglob("results_*.json")
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(results_file.read_text()), samples


def _check_metrics(results: dict) -> None:
    row = results["results"][LL]
    for name in LL_METRICS:
        assert 0.0 <= row[f"{name},none"] <= 1.0, (LL, name, row)
    row = results["results"][GEN]
    assert 0.0 <= row["coverage,none"] <= 1.0
    for name in ("alignment_w1", "alignment_jsd"):  # NaN when no reply named an option
        assert math.isnan(row[f"{name},none"]) or 0.0 <= row[f"{name},none"] <= 1.0, row
    # The paper's parser accepts any integer in 0..10, so an answer outside an item's options
    # (the random model's "9" for a 4-option item) can push the paper's score below 0.
    alignment = row["alignment,none"]
    answered = row["coverage,none"] > 0 or row["out_of_range,none"] > 0
    assert alignment <= 1.0 if answered else math.isnan(alignment), row


@pytest.fixture(scope="module")
def cli_run(tiny_model_dir, tmp_path_factory) -> tuple[dict, dict]:
    """The lm_eval command of docs/lm_eval.md, on the tiny model, with a limit."""
    if shutil.which("lm_eval") is None:
        pytest.skip("lm_eval command not installed")
    out = tmp_path_factory.mktemp("lm_eval_out")
    command = [
        "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
        "--apply_chat_template", "--include_path", str(TASK_DIR), "--tasks", f"{LL},{GEN}",
        "--limit", "3", "--device", "cpu", "--gen_kwargs", SHORT_REPLIES,
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    return _results_and_samples(out)


def test_lm_eval_command_writes_metrics_in_range(cli_run):
    results, samples = cli_run
    _check_metrics(results)
    assert results["versions"][LL] == 2.0 and results["versions"][GEN] == 2.0
    assert len(samples[LL]) == len(samples[GEN]) == 3


def test_logged_requests_hold_the_persona_in_the_system_message(cli_run):
    _, samples = cli_run
    system = render("culture_aware", "Q1", "USA").system
    for task in (LL, GEN):
        prompt = samples[task][0]["arguments"]["gen_args_0"]["arg_0"]
        assert prompt.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n")
    assert samples[LL][0]["arguments"]["gen_args_0"]["arg_1"] == "1<|im_end|>"


def test_loglikelihood_alignment_equals_culturespa_score(cli_run, tmp_path, capsys):
    results, samples = cli_run
    replies = [
        {"Q_id": s["doc"]["qid"], "answer": str(s["alignment"]["answer"])} for s in samples[LL]
    ]
    reply_file, scores = tmp_path / "replies.json", tmp_path / "scores.json"
    reply_file.write_text(json.dumps(replies))
    assert main(["score", str(reply_file), "--country", "USA", "--json", str(scores)]) == 0
    (row,) = json.loads(scores.read_text())
    assert results["results"][LL]["alignment,none"] == pytest.approx(row["alignment"])


def test_without_chat_template_the_persona_opens_a_plain_prompt(tiny_model_dir, tmp_path):
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    results = run_evaluation(
        str(tiny_model_dir),
        [LL, GEN],
        options=EvalOptions(
            apply_chat_template=False,
            limit=2,
            device="cpu",
            gen_kwargs={"max_gen_toks": 8},
            output_path=tmp_path,
            log_samples=True,
        ),
    )
    _check_metrics(results)
    expected = render("culture_aware", "Q1", "USA")
    for task in (LL, GEN):
        prompt = results["samples"][task][0]["arguments"][0][0]
        assert prompt == f"{expected.system}\n\n{expected.user}"
    assert results["samples"][LL][0]["arguments"][0][1] == " 1\n"
    low, high = results["culturespa"]["alignment_ci95"][LL]
    assert low <= results["results"][LL]["alignment,none"] <= high
    assert len(list(tmp_path.rglob("samples_*.jsonl"))) == 2
    # Written aside, moved in, the staging folder gone; the manifest lists what was written.
    assert [p.name for p in tmp_path.rglob(".*")] == [".culturespa-manifest.json"]


def test_culture_unaware_over_all_countries_costs_one_country(tiny_model_dir, tmp_path, capsys):
    """The culture-unaware prompt does not depend on the country: count the model's forward passes."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from culturespa.evaluation.tasks import task_manager

    calls = []
    original = HFLM._model_call

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    manager = task_manager()
    counts = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HFLM, "_model_call", counting)
        # plain lm-eval (the lm_eval command of docs/lm_eval.md): hf groups identical requests
        for tasks in (["wvs_culture_unaware_usa"], manager.match_tasks(["wvs_culture_unaware_*"])):
            calls.clear()
            lm_eval.simple_evaluate(
                model="hf", model_args={"pretrained": str(tiny_model_dir)}, tasks=tasks,
                task_manager=manager, limit=2, apply_chat_template=True, device="cpu",
            )  # fmt: skip
            counts[len(tasks)] = len(calls)
        # culturespa eval: identical requests are sent once, whatever the backend
        calls.clear()
        code = main(
            ["eval", "--model", str(tiny_model_dir), "--tasks", "wvs_culture_unaware_*",
             "--limit", "2", "--device", "cpu", "--output-path", str(tmp_path)]
        )  # fmt: skip
        assert code == 0
        counts["culturespa eval"] = len(calls)
    assert counts[1] == counts[19] == counts["culturespa eval"] > 0, counts
    results, _ = _results_and_samples(tmp_path)
    assert (
        results["culturespa"]["requests"]["sent"]["loglikelihood"] * 19
        == (results["culturespa"]["requests"]["received"]["loglikelihood"])
    )
    assert "wvs_culture_unaware_mex" in capsys.readouterr().out


def test_seeds_run_sampled_tasks_once_per_seed_and_the_report_merges_them(
    tiny_model_dir, tmp_path, capsys
):
    """The paper's mean of three sampled runs, from one `culturespa eval --seeds` command."""
    from culturespa.evaluation.run import EvalOptions, run_evaluations
    from culturespa.report.writer import ReportOptions, build_report

    runs = run_evaluations(
        str(tiny_model_dir),
        [LL, GEN],
        [42, 41, 40],
        EvalOptions(
            limit=20,
            device="cpu",
            gen_kwargs={"max_gen_toks": 24},
            output_path=tmp_path / "eval",
            log_samples=True,
        ),
    )
    assert [r["config"]["random_seed"] for r in runs] == [42, 41, 40]
    assert set(runs[0]["results"]) == {LL, GEN}
    assert set(runs[1]["results"]) == set(runs[2]["results"]) == {GEN}  # loglik is deterministic
    files = sorted((tmp_path / "eval").rglob("results_*.json"))
    assert len(files) == 3 and len({f.parent for f in files}) == 1
    report = build_report([tmp_path / "eval"], tmp_path / "report", ReportOptions(plot=False))
    gen_row = next(r for r in report.models if r.generation)
    ll_row = next(r for r in report.models if not r.generation)
    assert gen_row.n_runs == 3 and ll_row.n_runs == 1
    per_run = [r["results"][GEN]["alignment,none"] for r in runs]
    assert not any(math.isnan(v) for v in per_run)  # some replies name a number in each run
    assert len(set(per_run)) > 1  # the seeds sampled different replies
    assert gen_row.cells["USA"].value == pytest.approx(sum(per_run) / 3)
    assert "mean of 3 runs" in (tmp_path / "report" / "comparison.md").read_text()


def test_default_model_outputs_are_named_after_the_model(tiny_model_dir, tmp_path, monkeypatch):
    """lm-eval names the output folder after `pretrained`: the default model's is a cache path,
    so its results go to a folder named after the model instead."""
    cache = tmp_path / "cache"
    shutil.copytree(tiny_model_dir, cache / "models" / "smollm2-135m-instruct")
    monkeypatch.setenv("CULTURESPA_CACHE", str(cache))
    monkeypatch.setattr("culturespa.inference.default_model.is_converted", lambda path: True)
    monkeypatch.setattr("culturespa.inference.default_model.verify_checkpoint", lambda path: True)
    code = main(
        ["eval", "--model", "smollm2", "--tasks", LL, "--limit", "2", "--device", "cpu",
         "--output-path", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 0
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    assert results_file.parent.name == "HuggingFaceTB__SmolLM2-135M-Instruct"


@pytest.mark.parametrize(
    ("glob", "metrics"),
    [
        ("wvs_rev_culture_aware_*", LL_METRICS),
        ("wvs_dist_culture_aware_*", ("coverage", "unparsed")),
    ],
)
def test_lm_eval_runs_the_new_ways_by_glob(tiny_model_dir, tmp_path, glob, metrics):
    """The Done-when commands: plain `lm_eval` with `hf`, a glob per way, the tiny model."""
    if shutil.which("lm_eval") is None:
        pytest.skip("lm_eval command not installed")
    command = [
        "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
        "--apply_chat_template", "--include_path", str(TASK_DIR), "--tasks", glob,
        "--limit", "2", "--device", "cpu", "--gen_kwargs", SHORT_REPLIES,
        "--output_path", str(tmp_path), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    results, samples = _results_and_samples(tmp_path)
    tasks = {t for t in results["results"] if t.startswith(glob[:-1])}
    assert len(tasks) == 19 and set(samples) == tasks
    for task in tasks:
        row = results["results"][task]
        for name in metrics:
            assert not math.isnan(row[f"{name},none"]), (task, name)
        assert results["versions"][task] == 2.0
        for sample in samples[task]:
            answer, options = sample["alignment"]["answer"], sample["doc"]["options"]
            assert answer is None or answer in options
    if glob.startswith("wvs_dist_"):
        # A random model writes no distribution: every reply is counted, none dropped.
        total = sum(results["results"][t]["unparsed,none"] for t in tasks)
        covered = sum(results["results"][t]["coverage,none"] * 2 for t in tasks)
        assert total + covered == 2 * 19


# Permuted and calibrated ways on both Hugging Face backends ------------------------------------

DEBIASED = ["wvs_perm_culture_aware_usa", "wvs_cal_aware_self_alignment_chn"]
DEBIASED_SAMPLES = [0, 47, 93]
"""A 4-option item, a 10-option item, a 3-option item numbered from 0."""


def _debiased_samples(model, model_dir) -> dict[tuple[str, str], dict]:
    import lm_eval

    from culturespa.evaluation.tasks import task_manager

    lm = model(pretrained=str(model_dir), batch_size=4, device="cpu")
    out = lm_eval.simple_evaluate(
        model=lm, tasks=DEBIASED, task_manager=task_manager(), apply_chat_template=True,
        samples={t: DEBIASED_SAMPLES for t in DEBIASED}, log_samples=True,
    )  # fmt: skip
    return {(t, s["doc"]["qid"]): s for t in DEBIASED for s in out["samples"][t]}


def test_permuted_and_calibrated_distributions_agree_on_hf_and_culturespa_hf(tiny_model_dir):
    """The same per-item distributions (the log-likelihoods within the float32 parity
    tolerance, support.lm_eval_parity), the same answers; the orders of an item share the
    persona and question, and culturespa-hf scores each order's options in one pass."""
    from lm_eval.models.huggingface import HFLM
    from support.lm_eval_parity import TOLERANCE

    from culturespa.inference.lm_eval_model import CulturespaHFLM

    stock = _debiased_samples(HFLM, tiny_model_dir)
    ours = _debiased_samples(CulturespaHFLM, tiny_model_dir)
    assert stock.keys() == ours.keys() and len(stock) == 2 * len(DEBIASED_SAMPLES)
    for key, sample in stock.items():
        mine = ours[key]
        assert sample["arguments"] == mine["arguments"], key
        theirs_ll = [float(r[0][0]) for r in sample["resps"]]
        mine_ll = [float(r[0][0]) for r in mine["resps"]]
        assert mine_ll == pytest.approx(theirs_ll, abs=TOLERANCE["float32"]), key
        row, my_row = sample["alignment"], mine["alignment"]
        assert my_row["shares"] == pytest.approx(row["shares"], abs=TOLERANCE["float32"]), key
        assert my_row["answer"] == row["answer"], key
        k = len(sample["doc"]["shown"])
        prompts = len(sample["doc"]["users"])
        assert len(sample["resps"]) == k * prompts
        assert prompts == (k if key[0].startswith("wvs_perm_") else 2)
    # Each order's own answer is logged next to the pooled one.
    perm = stock[("wvs_perm_culture_aware_usa", "Q1")]["alignment"]
    assert len(perm["per_order"]) == 4
    assert "uncalibrated" in stock[("wvs_cal_aware_self_alignment_chn", "Q1")]["alignment"]
