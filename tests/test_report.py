"""`culturespa report` on small lm-eval results written by the tests themselves."""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
from pathlib import Path

import numpy as np
import pytest

from culturespa.alignment import alignment_from_arrays
from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.prompts.task_names import TaskName
from culturespa.report.results_files import load_runs, task_identity
from culturespa.report.writer import ReportOptions, build_report
from culturespa.survey.items import get_item, items_with_data, survey_majority

COUNTRIES = ("USA", "CHN", "NGA", "DEU")
PAPER_ORDER = ["USA", "DEU", "CHN", "NGA"]  # tables list countries in the paper's order


def answers_for(country: str, accuracy: float, seed: int, n_items: int = 40) -> dict[str, int]:
    """Answers that hit the survey majority with probability `accuracy`, else a random option."""
    rng = random.Random(seed)
    out = {}
    for qid in items_with_data(country)[:n_items]:
        item = get_item(qid)
        majority = survey_majority(country, qid)
        out[qid] = majority if rng.random() < accuracy else rng.choice(item.option_numbers)
    return out


def alignment(country: str, answers: dict[str, int | None]) -> float:
    valid = [(q, a) for q, a in answers.items() if a is not None]
    return alignment_from_arrays(
        [a for _, a in valid],
        [survey_majority(country, q) for q, _ in valid],
        [get_item(q).max_distance for q, _ in valid],
    )


def write_run(
    folder: Path,
    date: str,
    tasks: dict[str, dict[str, int | None]],
    model_args: dict | str,
    log_samples: bool = True,
    extra_results: dict | None = None,
    seed: int | None = None,
) -> Path:
    """An lm-eval results file (and sample logs) in the layout EvaluationTracker writes."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for task, answers in tasks.items():
        country = task.rsplit("_", 1)[1].upper()
        results[task] = {
            "alias": task,
            "alignment,none": alignment(country, answers),
            "alignment_stderr,none": "N/A",
            "alignment_w1,none": 0.7,
            "alignment_w1_stderr,none": "N/A",
        }
        if log_samples:
            lines = []
            for doc_id, (qid, answer) in enumerate(answers.items()):
                item = get_item(qid)
                doc = {
                    "qid": qid,
                    "country": country,
                    "options": list(item.option_numbers),
                    "majority": survey_majority(country, qid),
                    "max_distance": item.max_distance,
                }
                lines.append(
                    json.dumps(
                        {
                            "doc_id": doc_id,
                            "doc": doc,
                            "target": 0,
                            "arguments": [["ctx", f" {n}"] for n in item.option_numbers],
                            "resps": [],
                            "filtered_resps": [],
                            "filter": "none",
                            "metrics": ["alignment", "alignment_w1"],
                            "alignment": {
                                "answer": answer,
                                "majority": doc["majority"],
                                "max_distance": item.max_distance,
                            },
                            "alignment_w1": 0.7,
                        }
                    )
                )
            (folder / f"samples_{task}_{date}.jsonl").write_text("\n".join(lines) + "\n")
    results.update(extra_results or {})
    payload = {
        "results": results,
        "groups": {},
        "configs": {task: {"task": task} for task in tasks},
        "versions": {task: 1.0 for task in tasks},
        "n-samples": {task: {"original": len(a), "effective": len(a)} for task, a in tasks.items()},
        "config": {
            "model": "hf",
            "model_args": model_args,
            "batch_size": 1,
            **({"random_seed": seed} if seed is not None else {}),
        },
        "date": 1.0,
        "model_name": "x",
    }
    path = folder / f"results_{date}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """A base model and a better 'CultureSPA' adapter, both culture-aware, 4 countries, logged."""
    root = tmp_path_factory.mktemp("runs")
    base = {
        f"wvs_culture_aware_{cc.lower()}": answers_for(cc, 0.3, i) for i, cc in enumerate(COUNTRIES)
    }
    base["wvs_culture_unaware_usa"] = answers_for("USA", 0.3, 9)
    tuned = {
        f"wvs_culture_aware_{cc.lower()}": answers_for(cc, 0.8, 10 + i)
        for i, cc in enumerate(COUNTRIES)
    }
    write_run(
        root / "base" / "org__base", "2025-01-01T10-00-00.1", base, {"pretrained": "org/base"}
    )
    write_run(
        root / "joint" / "org__base",
        "2025-01-02T10-00-00.1",
        tuned,
        "pretrained=org/base,peft=runs/adapters/culture_joint",
    )
    return root / "base", root / "joint"


def test_task_identity_from_the_results_own_task_config_or_the_name():
    config = {"dataset_kwargs": {"way": "gen", "template": "culture_aware", "country": "USA"}}
    assert task_identity("renamed_by_the_user", config) == TaskName("gen", "culture_aware", "USA")
    older = {
        "dataset_kwargs": {"template": "culture_aware", "country": "NGA"},
        "output_type": "generate_until",
    }
    assert task_identity("x", older) == TaskName("gen", "culture_aware", "NGA")
    # Results files without task configs: the name says it.
    assert task_identity("wvs_culture_aware_usa") == TaskName("loglik", "culture_aware", "USA")
    assert task_identity("wvs_gen_cct_self_alignment_nga") == TaskName(
        "gen", "cct_self_alignment", "NGA"
    )
    assert task_identity("wvs_culture_aware") is None  # a group
    assert task_identity("wvs_leaderboard") is None
    assert task_identity("arc_easy") is None
    assert task_identity("wvs_culture_aware_xyz") is None


def test_report_two_runs(two_runs, tmp_path):
    out = tmp_path / "report"
    report = build_report(
        list(two_runs),
        out,
        ReportOptions(compare=("base | Culture-aware", "joint | Culture-aware")),
    )
    names = {p.relative_to(out).as_posix() for p in report.files}
    for expected in (
        "leaderboard.md",
        "leaderboard.csv",
        "leaderboard.json",
        "comparison.md",
        "comparison.csv",
        "plots/heatmap.png",
        "plots/bars.png",
    ):
        assert expected in names
    relation_plots = [n for n in names if n.startswith("plots/relations_")]
    assert len(relation_plots) == 2  # one per culture-aware row with answers for 4 countries
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "leaderboard.json").read_text())
    rows = [r for r in data["rows"] if r["kind"] == "model"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    references = [r for r in data["rows"] if r["kind"] == "reference"]
    assert [r["rule"] for r in references] == [
        "uniform", "middle", "consensus", "respondent", "nearest_country", "own_majority"
    ]  # fmt: skip
    assert all(r["rank"] is None for r in references) and data["rows"][-6:] == references
    top = rows[0]
    assert (
        top["model"] == "org/base + adapters/culture_joint" and top["template"] == "culture_aware"
    )
    usa = top["countries"]["USA"]
    lo, hi = usa["ci"]
    assert lo < usa["score"] < hi  # bootstrap interval from the sample log
    assert top["average_over"] == PAPER_ORDER
    expected_avg = sum(c["score"] for c in top["countries"].values()) / 4
    assert top["average"] == pytest.approx(expected_avg, abs=1e-6)
    assert top["average_ci"][0] < top["average"] < top["average_ci"][1]
    assert rows[0]["average"] > rows[1]["average"]  # the adapter aligns better, by construction
    assert set(data["correlations"]) and all(-1 <= r <= 1 for r in data["correlations"].values())


def test_leaderboard_csv_and_markdown(two_runs, tmp_path):
    build_report(list(two_runs), tmp_path, ReportOptions(plot=False))
    with (tmp_path / "leaderboard.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert [line["kind"] for line in lines] == ["model"] * 3 + ["reference"] * 6
    assert [line["rank"] for line in lines] == ["1", "2", "3"] + [""] * 6
    assert float(lines[0]["USA_ci_low"]) < float(lines[0]["USA"]) < float(lines[0]["USA_ci_high"])
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "| rank | model | template | AVG |" in markdown
    for name in ("leaderboard.md", "comparison.md"):
        table = [ln for ln in (tmp_path / name).read_text().splitlines() if ln.startswith("|")]
        widths = {ln.replace("\\|", "").count("|") for ln in table}
        assert len(widths) == 1, f"{name}: rows with different numbers of columns"
    comparison = (tmp_path / "comparison.csv").read_text().splitlines()
    assert comparison[0].split(",") == ["method", *PAPER_ORDER, "AVG", "specific", "coverage"]


def test_culture_specific_adapters_merge_into_one_row(tmp_path):
    for i, cc in enumerate(COUNTRIES):
        task = f"wvs_culture_aware_{cc.lower()}"
        write_run(
            tmp_path / cc,
            f"2025-01-0{i + 1}T00-00-00.0",
            {task: answers_for(cc, 0.6, i)},
            {"pretrained": "org/base", "peft": f"runs/specific/{cc.lower()}"},
        )
    report = build_report([tmp_path], tmp_path / "out", ReportOptions(plot=False))
    assert len(report.models) == 1
    row = report.models[0]
    assert row.label == "org/base + specific/{CC}"
    assert sorted(row.cells) == sorted(COUNTRIES)


def test_the_adapter_country_comes_from_its_training_record(tmp_path):
    # Folders that do not name the country; the record next to each adapter does.
    for i, (cc, name) in enumerate((("USA", "first"), ("CHN", "second"), (None, "joint"))):
        adapter = tmp_path / "adapters" / name
        adapter.mkdir(parents=True)
        (adapter / "culturespa_training.json").write_text(json.dumps({"country": cc}))
        countries = [cc] if cc else ["USA", "CHN"]
        write_run(
            tmp_path / "eval" / name,
            f"2025-01-0{i + 1}T00-00-00.0",
            {f"wvs_culture_aware_{c.lower()}": answers_for(c, 0.6, i) for c in countries},
            {"pretrained": "org/base", "peft": str(adapter)},
        )
    report = build_report([tmp_path / "eval"], tmp_path / "out", ReportOptions(plot=False))
    kinds = {row.adapter_kind: row for row in report.models}
    assert set(kinds) == {"specific", "joint"} and len(report.models) == 2
    assert sorted(kinds["specific"].cells) == ["CHN", "USA"]  # the two adapters, one row
    assert kinds["specific"].label == "org/base + adapters/{CC}"
    assert all(row.model == "org/base" for row in report.models)


def test_bad_inputs_are_notes_not_crashes(two_runs, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results_2025-01-01T00-00-00.0.json").write_text('{"results": {"wvs_culture_aw')
    write_run(
        bad / "other",
        "2025-01-01T00-00-00.0",
        {},
        "pretrained=gpt2",
        extra_results={"arc_easy": {"acc,none": 0.5}},
    )
    nolog = write_run(
        bad / "nolog",
        "2025-01-03T00-00-00.0",
        {"wvs_culture_aware_bra": answers_for("BRA", 0.5, 3)},
        {"pretrained": "org/other"},
        log_samples=False,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    report = build_report([bad, empty, two_runs[0]], tmp_path / "out")
    text = "\n".join(report.notes.messages)
    assert "not valid JSON" in text
    assert "no culturespa wvs_* tasks (found: arc_easy)" in text
    assert f"{nolog}: no sample logs" in text and "no intervals" in text
    assert f"{empty}: no lm-eval results files" in text
    bra = next(r for r in report.models if r.label == "org/other")
    assert math.isnan(bra.cells["BRA"].ci_low) and not math.isnan(bra.cells["BRA"].value)
    assert "## Notes" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_truncated_sample_log_keeps_valid_lines(tmp_path):
    answers = answers_for("USA", 0.5, 1)
    path = write_run(
        tmp_path, "2025-01-01T00-00-00.0", {"wvs_culture_aware_usa": answers}, {"pretrained": "m"}
    )
    log = tmp_path / "samples_wvs_culture_aware_usa_2025-01-01T00-00-00.0.jsonl"
    log.write_text(log.read_text()[:-40])  # cut the last line in half
    runs, notes = load_runs([path])
    assert len(runs[0].tasks[0].answers) == len(answers) - 1
    assert "unreadable line" in notes.messages[0]


def test_nothing_valid_is_an_error(tmp_path):
    with pytest.raises(CulturespaError, match="no lm-eval results files"):
        build_report([tmp_path], tmp_path / "out")


def test_cli_report(two_runs, tmp_path, capsys):
    assert main(["report", *map(str, two_runs), "-o", str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "AVG" in printed and "coverage" in printed and "wrote" in printed
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_intervals_stored_by_culturespa_eval_are_used_without_sample_logs(tmp_path):
    path = write_run(
        tmp_path,
        "2025-01-01T00-00-00.0",
        {"wvs_culture_aware_usa": answers_for("USA", 0.5, 1)},
        {"pretrained": "m"},
        log_samples=False,
    )
    data = json.loads(path.read_text())
    data["culturespa"] = {"alignment_ci95": {"wvs_culture_aware_usa": [0.41, 0.62]}}
    path.write_text(json.dumps(data))
    report = build_report([path], tmp_path / "out", ReportOptions(plot=False))
    cell = report.models[0].cells["USA"]
    assert (cell.ci_low, cell.ci_high) == (0.41, 0.62)
    assert not any("no sample logs" in m for m in report.notes.messages)


def test_seeded_runs_merge_into_one_row_with_mean_and_spread(tmp_path):
    # The paper reports the mean of three sampled runs (seeds 42, 41, 40).
    seeds = (42, 41, 40)
    per_seed = {
        seed: {
            f"wvs_gen_culture_aware_{cc.lower()}": answers_for(cc, 0.5, 100 * seed + i)
            for i, cc in enumerate(COUNTRIES)
        }
        for seed in seeds
    }
    for i, seed in enumerate(seeds):
        write_run(
            tmp_path / "org__m",
            f"2025-02-0{i + 1}T00-00-00.0",
            per_seed[seed],
            {"pretrained": "org/m"},
            seed=seed,
        )
    report = build_report([tmp_path], tmp_path / "out", ReportOptions(plot=False))
    assert len(report.models) == 1
    row = report.models[0]
    assert row.n_runs == 3
    for cc in COUNTRIES:
        task = f"wvs_gen_culture_aware_{cc.lower()}"
        per_run = [alignment(cc, per_seed[seed][task]) for seed in seeds]
        cell = row.cells[cc]
        assert cell.value == pytest.approx(sum(per_run) / 3)
        assert sorted(cell.runs) == pytest.approx(sorted(per_run))
        assert cell.spread == pytest.approx(statistics.stdev(per_run))
    run_avgs = [
        sum(
            alignment(cc, per_seed[seed][f"wvs_gen_culture_aware_{cc.lower()}"]) for cc in COUNTRIES
        )
        / 4
        for seed in seeds
    ]
    assert row.avg == pytest.approx(sum(run_avgs) / 3)
    assert row.avg_spread == pytest.approx(statistics.stdev(run_avgs))
    assert row.avg_low < row.avg < row.avg_high
    record = json.loads((tmp_path / "out" / "leaderboard.json").read_text())["rows"][0]
    assert record["runs"] == 3
    assert record["average_run_sd"] == pytest.approx(row.avg_spread, abs=1e-6)
    comparison = (tmp_path / "out" / "comparison.md").read_text()
    assert "mean of 3 runs" in comparison
    assert "| 3 (sd " in (tmp_path / "out" / "leaderboard.md").read_text()


def test_same_seed_twice_is_one_run_and_the_later_file_wins(tmp_path):
    first = {"wvs_culture_aware_usa": answers_for("USA", 0.2, 1)}
    second = {"wvs_culture_aware_usa": answers_for("USA", 0.9, 2)}
    write_run(tmp_path / "a", "2025-01-01T00-00-00.0", first, {"pretrained": "m"}, seed=42)
    write_run(tmp_path / "b", "2025-01-02T00-00-00.0", second, {"pretrained": "m"}, seed=42)
    report = build_report([tmp_path], tmp_path / "out", ReportOptions(plot=False))
    cell = report.models[0].cells["USA"]
    assert cell.n_runs == 1
    assert cell.value == pytest.approx(alignment("USA", second["wvs_culture_aware_usa"]))
    assert any("same seed; using the later file" in m for m in report.notes.messages)


def test_out_of_range_answers_are_counted_and_marked(tmp_path):
    answers = answers_for("USA", 0.5, 7)
    answers["Q1"] = 7  # Q1 has 4 options: valid for the paper's parser, but no option
    write_run(
        tmp_path,
        "2025-01-01T00-00-00.0",
        {"wvs_gen_culture_aware_usa": answers},
        {"pretrained": "m"},
    )
    report = build_report([tmp_path], tmp_path / "out", ReportOptions(plot=False))
    row = report.models[0]
    assert row.out_of_range == 1
    assert row.cells["USA"].coverage == pytest.approx((len(answers) - 1) / len(answers))
    assert row.cells["USA"].value == pytest.approx(alignment("USA", answers))  # still scored
    head = (tmp_path / "out" / "comparison.csv").read_text().splitlines()[0].split(",")
    assert head[-1] == "out of range"
    assert "(1 out of range)" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_average_interval_is_paired_across_countries(tmp_path):
    # One set of culture-unaware replies scored against 4 countries: the countries' scores move
    # together, so their average varies far more than an average of independent resamples.
    replies = answers_for("USA", 0.4, 5, n_items=200)
    tasks = {}
    for cc in COUNTRIES:
        tasks[f"wvs_culture_unaware_{cc.lower()}"] = {
            q: a for q, a in replies.items() if q in set(items_with_data(cc))
        }
    write_run(tmp_path, "2025-01-01T00-00-00.0", tasks, {"pretrained": "m"})
    row = build_report([tmp_path], tmp_path / "out", ReportOptions(plot=False)).models[0]
    # The too-narrow way, written out here: resample each country's items on its own, average.
    rng = np.random.default_rng(0)
    independent = np.zeros(1000)
    for cc, answers in ((t.rsplit("_", 1)[1].upper(), a) for t, a in tasks.items()):
        qids = list(answers)
        sq = np.array([(answers[q] - survey_majority(cc, q)) ** 2 for q in qids], dtype=float)
        span = np.array([get_item(q).max_distance ** 2 for q in qids], dtype=float)
        idx = rng.integers(0, len(qids), size=(1000, len(qids)))
        independent += (1 - np.sqrt(sq[idx].sum(axis=1) / span[idx].sum(axis=1))) / len(tasks)
    lo, hi = np.quantile(independent, [0.025, 0.975])
    assert row.avg_high - row.avg_low > 1.3 * (hi - lo)
    assert row.avg_low < row.avg < row.avg_high


def test_a_report_replaces_the_older_one_as_a_set(two_runs, tmp_path):
    """Into a folder that holds an older report, the user's own files and (as `culturespa demo`
    leaves it) lm-eval's results: every file of the old report goes, the new set comes, the rest
    stays, down to a file of the user's among the old plots."""
    out = tmp_path / "report"
    build_report(list(two_runs), out, ReportOptions(plot=True))
    old_plots = sorted((out / "plots").iterdir())
    assert old_plots
    (out / "plots" / "fig.png").write_text("the user's plot")
    (out / "notes.txt").write_text("the user's notes")
    (out / "lm_eval").mkdir()
    (out / "lm_eval" / "results_old.json").write_text("{}")
    report = build_report(list(two_runs), out, ReportOptions(plot=False))
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "comparison.csv",
        "comparison.md",
        "index.html",
        "leaderboard.csv",
        "leaderboard.json",
        "leaderboard.md",
        "lm_eval",
        "notes.txt",
        "plots",
        "steerability.csv",  # the base model has culture-unaware and culture-aware rows
        "steerability.md",
    ]
    assert sorted((out / "plots").iterdir()) == [out / "plots" / "fig.png"]
    assert "org/base" in (out / "leaderboard.md").read_text()
    assert (out / "lm_eval" / "results_old.json").read_text() == "{}"
    assert (out / "notes.txt").read_text() == "the user's notes"
    ours = {"lm_eval", "notes.txt", "plots"}
    assert sorted(report.files) == sorted(
        p for p in out.iterdir() if p.name not in ours and not p.name.startswith(".")
    )
    # A failing report (an unknown --compare row) changes nothing of the new set.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(CulturespaError, match="matches no row"):
        build_report(list(two_runs), out, ReportOptions(compare=("nope", "joint")))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_compare_writes_the_paired_change_of_the_second_row(two_runs, tmp_path):
    """`--compare A B` writes change.md: per country the change of the paper's score from row A
    to row B on the items both answered, with a paired interval; stated here from the answers."""
    out = tmp_path / "report"
    report = build_report(
        list(two_runs),
        out,
        ReportOptions(compare=("base | Culture-aware", "joint | Culture-aware"), plot=False),
    )
    change = report.change
    assert change is not None and (out / "change.md").is_file()
    by_country = {s.country: s for s in change.countries}
    assert sorted(by_country) == sorted(COUNTRIES)
    for i, cc in enumerate(COUNTRIES):
        before, after = answers_for(cc, 0.3, i), answers_for(cc, 0.8, 10 + i)
        step = by_country[cc]
        assert step.delta == pytest.approx(alignment(cc, after) - alignment(cc, before), abs=1e-9)
        assert step.delta_low <= step.delta <= step.delta_high
        closer = sum(
            abs(after[q] - survey_majority(cc, q)) < abs(before[q] - survey_majority(cc, q))
            for q in before
        )
        assert step.closer == pytest.approx(closer / len(before))
    mean, low, high = change.average
    assert mean == pytest.approx(np.mean([s.delta for s in change.countries]))
    assert 0 < low < mean < high  # 0.8 vs 0.3 of the majority: a change outside the interval
    text = (out / "change.md").read_text()
    assert "paired bootstrap" in text and "AVG" in text
    assert json.loads((out / "leaderboard.json").read_text())["change"]["average_delta"] == (
        pytest.approx(mean, abs=1e-6)
    )


def test_culture_specific_alignment_is_a_column_beside_every_metric(two_runs, tmp_path):
    """The paper's score on the items where the country's majority differs from the consensus,
    written out here from the sample logs, next to the ranking metric."""
    from culturespa.survey.items import culture_specific_items

    report = build_report(
        list(two_runs), tmp_path, ReportOptions(plot=False, metric="alignment_w1")
    )
    row = next(r for r in report.models if "joint" in r.label)
    for cc, cell in row.cells.items():
        specific = set(culture_specific_items(cc))
        log = next((two_runs[1]).rglob(f"samples_wvs_culture_aware_{cc.lower()}_*.jsonl"))
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        kept = [r["alignment"] for r in rows if r["doc"]["qid"] in specific]
        expected = alignment_from_arrays(
            [r["answer"] for r in kept],
            [r["majority"] for r in kept],
            [r["max_distance"] for r in kept],
        )
        assert cell.specific == pytest.approx(expected)
    record = json.loads((tmp_path / "leaderboard.json").read_text())["rows"]
    joint = next(r for r in record if "joint" in r["model"])
    assert joint["specific_average"] == pytest.approx(row.specific_avg, abs=1e-6)
    middle = next(r for r in record if r.get("rule") == "middle")
    assert middle["specific_average"] is not None  # references have it too
