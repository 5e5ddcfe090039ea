"""The permuted and calibrated ways in `culturespa demo`, `culturespa eval` and the report: rows
per way, the position-led share, `--ways`."""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")


@pytest.mark.slow
def test_the_demo_asks_the_debiased_ways_and_reports_them_as_rows(tiny_model_dir, tmp_path, capsys):
    import json

    from culturespa.cli.main import main

    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir), "--countries", "USA", "--limit", "2"]
    assert main([*argv, "--ways", "loglik,perm,cal", "-o", str(out)]) == 0
    (results,) = (out / "lm_eval").rglob("results_*.json")
    tasks = set(json.loads(results.read_text())["results"])
    assert {"wvs_perm_culture_aware_usa", "wvs_cal_culture_unaware_usa"} <= tasks
    payload = json.loads((out / "leaderboard.json").read_text())
    ways = {(r["template"], r["way"]) for r in payload["rows"] if r["kind"] == "model"}
    assert {w for _, w in ways} == {"loglik", "perm", "cal"} and len(ways) == 2 * 3
    comparison = (out / "comparison.md").read_text()
    assert "Culture-aware (P1), permuted orders" in comparison
    assert "Culture-aware (P1), calibrated" in comparison
    # The position-led share of each template, from the calibrated tasks' metric.
    shares = {p["template"]: p for p in payload["position_led"]}
    assert set(shares) == {"culture_unaware", "culture_aware"}
    for template, entry in shares.items():
        task = f"wvs_cal_{template}_usa"
        logged = json.loads(results.read_text())["results"][task]["position_led,none"]
        assert entry["countries"]["USA"] == pytest.approx(logged)
    assert "Position-led share" in (out / "position_led.md").read_text()
    page = (out / "index.html").read_text()
    assert 'id="position-led"' in page and "Culture-aware (P1)" in page
    assert "log-likelihood, permuted orders" in page  # a way to choose on the page
    # `culturespa report --ways` keeps the chosen ways' rows.
    again = tmp_path / "perm_only"
    assert main(["report", str(out / "lm_eval"), "-o", str(again), "--ways", "perm"]) == 0
    payload = json.loads((again / "leaderboard.json").read_text())
    assert {r["way"] for r in payload["rows"] if r["kind"] == "model"} == {"perm"}
    assert payload["position_led"] == []  # the calibrated tasks were left out


def test_position_led_shares_are_averaged_per_model_template_and_country():
    from pathlib import Path

    from culturespa.report.position import position_led, position_led_markdown
    from culturespa.report.run_scores import RunScores, TaskResult

    def run(label: str, value: float) -> RunScores:
        tasks = [
            TaskResult("wvs_cal_culture_aware_usa", "culture_aware", "cal", "USA",
                       {"alignment": 0.5, "position_led": value}),
            TaskResult("wvs_culture_aware_usa", "culture_aware", "loglik", "USA",
                       {"alignment": 0.5, "position_led": 0.0}),  # not a calibrated task
        ]  # fmt: skip
        return RunScores(Path(f"{label}.json"), "m", label, "d", tasks=tasks)

    (row,) = position_led([run("tiny", 0.75), run("tiny", 0.25)])
    assert (row.model, row.template, row.shares) == ("tiny", "culture_aware", {"USA": 0.5})
    assert row.as_dict()["mean"] == 0.5
    assert "| tiny | Culture-aware (P1) | 50.0 | 50.0 |" in position_led_markdown([row])


@pytest.mark.slow
def test_culturespa_eval_runs_the_permuted_way_by_glob(tiny_model_dir, tmp_path):
    import json

    from culturespa.cli.main import main

    argv = ["eval", "--model", str(tiny_model_dir), "--tasks", "wvs_perm_culture_aware_*"]
    assert main([*argv, "--limit", "1", "--device", "cpu", "--output-path", str(tmp_path)]) == 0
    (results_file,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    tasks = [t for t in results["results"] if t.startswith("wvs_perm_culture_aware_")]
    assert len(tasks) == 19
    assert all(results["versions"][t] == 1.0 for t in tasks)
    assert all(results["results"][t]["coverage,none"] == 1.0 for t in tasks)
