"""The main job end to end on the tiny model: lm-eval tasks -> results + sample logs -> report."""

from __future__ import annotations

import json

import pytest

from culturespa.cli.main import main

pytest.importorskip("lm_eval")


@pytest.mark.slow
def test_demo_writes_table_results_and_plots(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir), "--countries", "USA,CHN,NGA", "--limit", "3"]
    assert main([*argv, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Culture-unaware" in printed and "Culture-aware (P1)" in printed and str(out) in printed
    results = list((out / "lm_eval").rglob("results_*.json"))
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    assert "wvs_culture_aware_nga" in data["results"]
    assert len(list((out / "lm_eval").rglob("samples_wvs_*.jsonl"))) == 6
    for name in (
        "comparison.md",
        "comparison.csv",
        "leaderboard.md",
        "plots/heatmap.png",
        "plots/bars.png",
        "index.html",
    ):
        assert (out / name).is_file(), name
    assert printed.rstrip().splitlines()[-1].endswith(str((out / "index.html").resolve()))
    assert list((out / "plots").glob("relations_*.png"))
    # The report re-reads the run on its own, with intervals from the sample logs.
    assert main(["report", str(out / "lm_eval"), "-o", str(tmp_path / "again"), "--no-plots"]) == 0
    payload = json.loads((tmp_path / "again" / "leaderboard.json").read_text())
    rows = [r for r in payload["rows"] if r["kind"] == "model"]
    assert {r["template"] for r in rows} == {"culture_unaware", "culture_aware"}
    assert all(r["countries"]["USA"]["ci"][0] is not None for r in rows)


def test_demo_tasks_cover_every_way_template_and_country():
    from culturespa.evaluation.demo import demo_tasks

    assert demo_tasks(("culture_aware",), ("USA",)) == ["wvs_culture_aware_usa"]  # the default
    assert demo_tasks(("culture_unaware", "culture_aware"), ("USA", "CHN"), ("rev", "dist")) == [
        "wvs_rev_culture_unaware_usa",
        "wvs_rev_culture_unaware_chn",
        "wvs_rev_culture_aware_usa",
        "wvs_rev_culture_aware_chn",
        "wvs_dist_culture_unaware_usa",
        "wvs_dist_culture_unaware_chn",
        "wvs_dist_culture_aware_usa",
        "wvs_dist_culture_aware_chn",
    ]


@pytest.mark.slow
def test_demo_asks_in_four_ways_and_reports_their_consistency(
    tiny_model_dir, tmp_path, capsys, monkeypatch
):
    from culturespa.inference.lm_eval_model import CulturespaHFLM

    real = CulturespaHFLM.generate_until

    def short(self, requests, disable_tqdm=False):  # the random model would fill 256 tokens
        for request in requests:
            request.args[1]["max_gen_toks"] = 6
        return real(self, requests, disable_tqdm)

    monkeypatch.setattr(CulturespaHFLM, "generate_until", short)
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir), "--countries", "USA,CHN", "--limit", "3"]
    assert main([*argv, "--ways", "loglik,rev,gen,dist", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ways loglik, rev, gen, dist" in printed
    assert "order consistency (SmolLM2" not in printed  # the tiny model is not the default
    assert "order consistency (" in printed and "agreement between ways" in printed
    (results,) = (out / "lm_eval").rglob("results_*.json")
    tasks = set(json.loads(results.read_text())["results"])
    for prefix in ("wvs_", "wvs_rev_", "wvs_gen_", "wvs_dist_"):
        assert f"{prefix}culture_aware_chn" in tasks
    payload = json.loads((out / "leaderboard.json").read_text())
    ways = {(r["template"], r["way"]) for r in payload["rows"] if r["kind"] == "model"}
    assert len(ways) == 2 * 4
    assert {o["template"] for o in payload["order_consistency"]} == {
        "culture_unaware",
        "culture_aware",
    }
    assert {tuple(a["ways"]) for a in payload["agreement"]} >= {("loglik", "rev")}
    for name in ("order_consistency.md", "order_consistency.csv", "comparison.md"):
        assert (out / name).is_file(), name
    assert len(list((out / "plots").glob("order_consistency_*.png"))) == 2
    assert (out / "plots" / "bars.png").is_file()  # the log-likelihood rows compared


def test_free_cores_measures_the_cpu_now_not_the_load_average(monkeypatch, tmp_path):
    from culturespa.cli import demo as demo_cli

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
    assert demo_cli._cpu_times(str(stat)) == (150, 1000)
    assert demo_cli._cpu_times(str(tmp_path / "missing")) is None

    samples = iter([(150, 1000), (650, 2000)])  # half of all CPU time busy in between
    monkeypatch.setattr(demo_cli, "_cpu_times", lambda stat="": next(samples))
    monkeypatch.setattr(demo_cli.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(demo_cli.os, "getloadavg", lambda: (4.0, 4.0, 4.0))  # stale: ignored
    monkeypatch.setattr(demo_cli.time, "sleep", lambda s: None)
    assert demo_cli.free_cores() == 2

    # 2 cores, 0.6 of one busy during the measurement (a short command): both threads are free;
    # 0.8 of one busy (another job): one thread.
    monkeypatch.setattr(demo_cli.os, "cpu_count", lambda: 2)
    for busy, threads in ((0.6, 2), (0.8, 1), (1.9, 1)):
        monkeypatch.setattr(demo_cli, "busy_cores", lambda busy=busy: busy)
        assert demo_cli.free_cores() == threads, busy
    monkeypatch.undo()
    monkeypatch.setattr(demo_cli.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(demo_cli.os, "getloadavg", lambda: (4.0, 4.0, 4.0))

    monkeypatch.setattr(demo_cli, "_cpu_times", lambda stat="": None)  # no /proc: load average
    assert demo_cli.free_cores() == 1
