"""The benchmark script runs end to end on the tiny model and writes every row (no thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")

REPO = Path(__file__).resolve().parents[1]
ROWS = {
    # paper's loop, hf and culturespa-hf log-likelihood and generation, permuted, calibrated
    "1 evaluation": 7,
    "2 scaling": 7,  # 1x1, unaware 1 and 19, 6x19, items 1x 2x 4x
    "3 data builder": 5,  # loop, ours by log-likelihood, ours sampled, whole prompts / prefixes
}


@pytest.mark.long
def test_benchmark_script_writes_every_row(tiny_model_dir, tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable, str(REPO / "benchmarks" / "run.py"), "--model", str(tiny_model_dir),
        "--items", "4", "--baseline-items", "1", "--scaling-items", "1", "--growth-items", "1",
        "--builder-questions", "1", "--builder-loop-prompts", "1", "--builder-sample-tokens", "4",
        "--batching-questions", "70", "--out", str(out), "--in-process",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 1 evaluation | paper's loop" in proc.stdout
    assert "| 1 evaluation | lm-eval `culturespa-hf`, permuted orders" in proc.stdout
    report = json.loads((out / "bench.json").read_text())
    counts: dict[str, int] = {}
    for row in report["rows"]:
        counts[row["section"]] = counts.get(row["section"], 0) + 1
        assert row["items"] and row["seconds"] > 0 and row["peak_rss_mb"] > 0, row
        assert row["batch_size"], row
    assert counts == ROWS
    derived = report["derived"]
    for key in (
        "eval_agreement_loop_vs_loglik",
        "eval_agreement_hf_vs_culturespa_hf",
        "eval_alignment",
        "scaling",
        "builder_agreement_loop_vs_loglik",
        "eval_debiased_vs_forward",
    ):
        assert key in derived, key
    # the two lm-eval models give the same log-likelihood answers
    same = derived["eval_agreement_hf_vs_culturespa_hf"]
    assert same["identical"] == same["n"] == 1
    check_debiased_rows(out, derived)
    assert (out / "bench.md").read_text().startswith("| part |")


def check_debiased_rows(out: Path, derived: dict) -> None:
    """The permuted and calibrated ways ran on the forward row's items and asked what their
    rules ask: k prompts of k options per k-option item (permuted); the item's k options and the
    content-free prompt's k (calibrated), the content-free prompt shared by items of one k."""
    forward = json.loads((out / "parts" / "eval_loglik.json").read_text())
    sizes = [len(scores) for scores in forward["logliks"].values()]
    assert forward["option_scores"] == sum(sizes) and forward["prompts"] == len(sizes) == 4
    perm, cal = (
        derived["eval_debiased_vs_forward"]["perm"],
        derived["eval_debiased_vs_forward"]["cal"],
    )
    for way in (perm, cal):
        assert way["same_items"] and way["time_ratio"] > 0 and way["seconds"][1] > 0
    assert perm["prompts"] == [len(sizes), sum(sizes)]
    assert perm["option_scores"] == [sum(sizes), sum(k * k for k in sizes)]
    assert cal["option_scores"] == [sum(sizes), 2 * sum(sizes)]
    assert len(sizes) < cal["prompts"][1] <= 2 * len(sizes)


def test_a_part_in_its_own_process_reports_that_process_peak_memory(tiny_model_dir, tmp_path):
    """The published way: each part a child process, its peak memory the child's own."""
    out = tmp_path / "bench"
    command = [
        sys.executable, str(REPO / "benchmarks" / "run.py"), "--model", str(tiny_model_dir),
        "--builder-questions", "1", "--parts", "builder_ours", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads((out / "bench.json").read_text())["rows"]
    assert row["section"] == "3 data builder" and row["peak_rss_mb"] > 0 and row["seconds"] > 0
