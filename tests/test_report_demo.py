"""The main job end to end on the tiny model: lm-eval tasks -> results + sample logs -> report."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from support.leaks import leaked_internals, page_text
from test_report_html import browser, rendered_sections  # noqa: F401  (the Chromium fixture)

from culturespa.cli.main import main

pytest.importorskip("lm_eval")


def _demo(argv: list[str]) -> str:
    """Run `culturespa demo` with `argv`; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", *argv]) == 0
    return printed.getvalue()


@pytest.fixture(scope="module")
def demo_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, str]:
    """The demo on the tiny model, 3 countries, 3 items per task: its folder, what it printed."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    argv = ["--model", str(tiny_model_dir), "--countries", "USA,CHN,NGA", "--limit", "3"]
    return out, _demo([*argv, "-o", str(out)])


@pytest.fixture(scope="module")
def four_ways_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, str]:
    """The demo asking in all four ways (replies cut to 6 tokens): its folder, what it printed."""
    from culturespa.inference.lm_eval_model import CulturespaHFLM

    real = CulturespaHFLM.generate_until

    def short(self, requests, disable_tqdm=False):  # the random model would fill 256 tokens
        for request in requests:
            request.args[1]["max_gen_toks"] = 6
        return real(self, requests, disable_tqdm)

    out = tmp_path_factory.mktemp("demo4") / "demo"
    argv = ["--model", str(tiny_model_dir), "--countries", "USA,CHN", "--limit", "3"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CulturespaHFLM, "generate_until", short)
        printed = _demo([*argv, "--ways", "loglik,rev,gen,dist", "-o", str(out)])
    return out, printed


@pytest.mark.slow
def test_demo_writes_table_results_and_plots(demo_run, tmp_path):
    out, printed = demo_run
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


@pytest.mark.slow
def test_what_the_demo_prints_and_writes_shows_values_not_internals(demo_run, four_ways_run):
    for out, printed in (demo_run, four_ways_run):
        assert not leaked_internals(printed)
        for table in out.glob("*.md"):
            assert not leaked_internals(table.read_text()), table.name
        assert not leaked_internals(page_text((out / "index.html").read_text()))
    steer = (demo_run[0] / "steerability.md").read_text()
    assert "| USA | 3 |" in steer  # the items column counts the 3 items asked


@pytest.mark.slow
def test_every_section_of_the_demo_pages_in_chromium_shows_values(browser, demo_run, four_ways_run):  # noqa: F811
    sections = set()
    for out, _ in (demo_run, four_ways_run):
        texts, problems = rendered_sections(browser, out / "index.html")
        sections |= set(texts)
        for name, text in texts.items():
            assert not leaked_internals(text), (out.parent.name, name, leaked_internals(text))
        assert not problems, problems
    assert {"leaderboard", "heatmap", "bars", "relations", "steerability", "order", "agreement",
            "runs"} <= sections  # fmt: skip
    page = browser.new_page()
    page.goto((demo_run[0] / "index.html").as_uri())
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    items = page.eval_on_selector_all(
        "table.steer td:nth-child(2)", "cells => cells.map(c => c.textContent)"
    )
    assert items and set(items) == {"3"}  # 3 items per country (--limit 3), not a method's repr


def test_demo_tasks_cover_every_way_template_and_country(capsys):
    from culturespa.cli.demo import task_groups

    assert task_groups(("culture_aware",), ("loglik",)) == ["wvs_culture_aware"]
    assert task_groups(("culture_unaware", "culture_aware"), ("rev", "dist")) == [
        "wvs_rev_culture_unaware",
        "wvs_rev_culture_aware",
        "wvs_dist_culture_unaware",
        "wvs_dist_culture_aware",
    ]
    # The demo is the loop's demo config: every group for every country, the base model only.
    argv = ["loop", "--config", "demo", "--output-dir", "unused-demo-folder", "--dry-run"]
    assert main(argv) == 0
    (command,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("would run")]
    tasks = command.split("--tasks ")[1].split()[0].split(",")
    assert tasks == [
        f"wvs_culture_{t}aware_{cc}"
        for t in ("un", "")
        for cc in ("usa", "chn", "nga", "deu", "bra")
    ]
    assert "--peft" not in command and "--adapters" not in command
    assert "--log-samples" in command and command.endswith("unused-demo-folder/lm_eval")


@pytest.mark.slow
def test_demo_asks_in_four_ways_and_reports_their_consistency(four_ways_run):
    out, printed = four_ways_run
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
    from culturespa.loop import commands as demo_cli

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
